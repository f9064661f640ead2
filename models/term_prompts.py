"""Vectors for a thesaurus's terms: each preferred label, in each of its languages, said
in a few ways ("{}", "a drawing of {}", ...), and the unit mean of those texts' vectors.

A prompt ensemble: one bare label is a poor text for a CLIP model, which learnt from
captions; several phrasings averaged give steadier zero-shot scores. The phrasings are
data, per language; a label in a language without its own falls back to the bare label.
`PROMPT_SET` names this recipe and is stored with each term vector: changing a phrasing
must change it, so that stores embed their terms again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

PROMPT_SET = "terms-v1"

TEMPLATES: Mapping[str, tuple[str, ...]] = {
    # The archives this is made for hold drawings, photographs and prints of objects.
    "en": ("{}", "a drawing of {}", "a photograph of {}"),
    # No article: French needs the noun's gender for one ("un fauteuil", "une lampe").
    "fr": ("{}", "dessin : {}", "photographie : {}"),
}
BARE = ("{}",)


def term_prompts(labels: Mapping[str, str]) -> list[str]:
    """The texts that stand for one term: each label in its language's phrasings."""
    prompts: list[str] = []
    for language, label in labels.items():
        for template in TEMPLATES.get(language, BARE):
            prompt = template.format(label)
            if prompt not in prompts:
                prompts.append(prompt)
    return prompts


def embed_terms(
    embed_texts: Callable[[list[str]], np.ndarray],
    terms: Sequence[Mapping[str, str]],
) -> np.ndarray:
    """One float32 unit vector per term (rows in `terms`' order), from the preferred
    labels per language of each. `embed_texts` is an Encoder's, or one that runs it on
    the model's thread; it gets one batch for every term, so give a few hundred at a time."""
    prompts = [term_prompts(labels) for labels in terms]
    if any(not texts for texts in prompts):
        raise ValueError("every term needs at least one label")
    flat = [text for texts in prompts for text in texts]
    vectors = np.asarray(embed_texts(flat), dtype=np.float32)
    means = np.empty((len(terms), vectors.shape[1]), dtype=np.float32)
    start = 0
    for row, texts in enumerate(prompts):
        means[row] = vectors[start : start + len(texts)].mean(axis=0)
        start += len(texts)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return means / np.maximum(norms, 1e-12)
