// Draft subject terms in the detail panel: the terms of the store's thesauri that the
// model finds closest to the item (machine suggestions, marked as such, with their
// scores), and the reviewers' decisions on them. A reviewer accepts or rejects a term
// with the token an administrator made for them (`regard reviewer add`), kept in this
// browser; the decisions export as W3C annotations and as CSV.

import { api, isAbort, termExports } from "./api.js";
import { bilingual, h, replace } from "./dom.js";
import { errorNotice } from "./errors.js";
import { langAttribute, pickValues } from "./iiif.js";

/** How many terms of each vocabulary the panel asks for. */
export const TERMS_K = 8;

// ---- the reviewer's token ---------------------------------------------------------------

const TOKEN_KEY = "regard.reviewerToken";

// A browser may refuse localStorage (privacy settings): the token then lasts the page.
let tokenInPage = null;

const reviewerToken = {
  get() {
    try {
      return window.localStorage.getItem(TOKEN_KEY) || null;
    } catch {
      return tokenInPage;
    }
  },
  set(token) {
    tokenInPage = token;
    try {
      window.localStorage.setItem(TOKEN_KEY, token);
    } catch {
      // kept in the page only
    }
  },
  forget() {
    tokenInPage = null;
    try {
      window.localStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing stored
    }
  },
};

// ---- wording ----------------------------------------------------------------------------

const isTokenRefused = (error) => error.code === "token_required" || error.code === "unknown_token";

/** The viewer's error notice (errors.js), about terms. */
const termsError = (error) => errorNotice(error, { className: "terms-error", many: "termes" });

/** A concept's label ({lang: text}) in the viewer's preferred language: fr, en, any. */
function labelOf(labels) {
  const map = Object.fromEntries(Object.entries(labels ?? {}).map(([lang, text]) => [lang, [text]]));
  const { lang, values } = pickValues(map);
  return { lang, text: values[0] ?? "" };
}

const wholePercent = new Intl.NumberFormat("fr-FR", { style: "percent", maximumFractionDigits: 0 });
const finePercent = new Intl.NumberFormat("fr-FR", { style: "percent", maximumFractionDigits: 1 });

/** A score as a percentage: whole above 10 %, to a tenth below, "< 0,1 %" below that. */
function formatPercent(score) {
  if (score > 0 && score < 0.001) return `< ${finePercent.format(0.001)}`;
  return (score < 0.1 ? finePercent : wholePercent).format(score);
}

const dateFormat = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long", timeStyle: "short" });
const formatDate = (iso) => {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
};

const SCORE_MEANINGS = {
  sigmoid:
    "Vraisemblance de ce terme selon le modèle, indépendante des autres termes (sigmoïde) : un ordre, pas une certitude.",
  softmax:
    "Part de ce terme parmi les termes candidats du vocabulaire (softmax) : ensemble, ces parts font 100 %. Un ordre, pas une certitude.",
};

const SCORING_LINES = {
  sigmoid: bilingual("Score : vraisemblance propre à chaque terme.", "each term’s own likelihood"),
  softmax: bilingual("Score : part de chaque terme parmi les candidats (100 % à eux tous).", "each term’s share"),
};

// ---- one term -----------------------------------------------------------------------------

const DECISION_WORDS = { accepted: "accepté", rejected: "rejeté" };
const DECISION_SIGNS = { accepted: "✓", rejected: "✗" };

/** What the machine said of the term: the badge, its rank and its score. */
function machineNodes(suggestion) {
  if (!suggestion) return [];
  const score = formatPercent(suggestion.score);
  return [
    h(
      "span",
      {
        class: "machine-badge",
        title: `Suggestion automatique du modèle ${suggestion.model}, le ${formatDate(suggestion.suggested_at)}`,
      },
      "machine",
    ),
    h("span", { class: "term-rank" }, `n° ${suggestion.rank}`),
    h(
      "data",
      {
        class: "term-score",
        value: String(suggestion.score),
        title: SCORE_MEANINGS[suggestion.scoring] ?? null,
        "data-scoring": suggestion.scoring,
      },
      score,
    ),
  ];
}

/** The thesaurus's broader terms, nearest first: "éclairage › chauffage, éclairage…". */
function broaderNode(broader) {
  const labels = (broader ?? []).map((parent) => labelOf(parent.labels)).filter((label) => label.text);
  if (labels.length === 0) return null;
  return h(
    "p",
    { class: "term-broader", title: "Termes génériques, du plus proche au plus large" },
    h("span", { class: "visually-hidden" }, "sous : "),
    labels.flatMap((label, i) => [
      i ? h("span", { "aria-hidden": "true" }, " › ") : null,
      h("span", { lang: langAttribute(label.lang) }, label.text),
    ]),
  );
}

function decisionNode(decision) {
  if (!decision) return null;
  return h(
    "p",
    { class: "term-state", title: `le ${formatDate(decision.at)}` },
    h("span", { "aria-hidden": "true" }, `${DECISION_SIGNS[decision.decision]} `),
    `${DECISION_WORDS[decision.decision]} par ${decision.by}`,
  );
}

const similarityFormat = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 2 });

/** What cataloguers decided for the term on the images most like this one: why it was put
 * forward or back in the list (see indexer/term_precedents.py). */
function precedentNode(precedent) {
  if (!precedent) return null;
  const { accepted, rejected, looked_at: lookedAt, similarity } = precedent;
  const counts = [
    accepted ? `accepté pour ${accepted}` : null,
    rejected ? `rejeté pour ${rejected}` : null,
  ].filter(Boolean);
  const leaning = accepted > rejected ? "is-backed" : rejected > accepted ? "is-opposed" : "";
  return h(
    "p",
    {
      class: `term-precedent ${leaning}`.trim(),
      title: `La plus semblable de ces images a une similarité de ${similarityFormat.format(similarity)} avec celle-ci (1 : identique).`,
    },
    `${counts.join(", ")} des ${lookedAt} images les plus semblables`,
  );
}

/** A term of the list: its label, the machine's word, the reviewers' decision, and the
 * buttons that change it. The buttons stay in place as the term changes, so that the
 * keyboard's focus and the mouse stay on them. */
class TermRow {
  constructor(term, review) {
    this.term = term;
    this.review = review;
    const label = labelOf(term.concept.labels);
    this.name = `« ${label.text || term.concept.id} »`;
    const button = (decision, text, extra = {}) =>
      h(
        "button",
        {
          type: "button",
          class: `button-secondary term-${decision}`,
          onclick: (event) => review.decide(this, decision, event.currentTarget),
          ...extra,
        },
        text,
        h("span", { class: "visually-hidden" }, ` ${this.name}`),
      );
    this.buttons = {
      accepted: button("accepted", "Accepter"),
      rejected: button("rejected", "Rejeter"),
      undecided: button("undecided", "Annuler la décision"),
    };
    this.about = h("div", { class: "term-about" });
    this.problem = h("div", { class: "term-problem" });
    this.element = h(
      "li",
      { class: "term", "data-concept": term.concept.id },
      this.about,
      h("p", { class: "term-actions" }, Object.values(this.buttons)),
      this.problem,
    );
    this.show(term);
  }

  /** Shows the term as the API now gives it. */
  show(term) {
    // A decision's answer is about this item alone: what was decided for the most similar
    // images, which placed the term in the list, stays as it was.
    const precedent = term.precedent ?? this.term.precedent;
    this.term = { ...term, precedent };
    const { concept, suggestion, decision } = term;
    const label = labelOf(concept.labels);
    const state = decision?.decision ?? "undecided";
    this.element.classList.toggle("is-accepted", state === "accepted");
    this.element.classList.toggle("is-rejected", state === "rejected");
    this.element.classList.toggle("is-retired", Boolean(concept.retired));
    replace(
      this.about,
      h(
        "p",
        { class: "term-head" },
        h("span", { class: "term-label", lang: langAttribute(label.lang) }, label.text || concept.id),
        concept.notation ? h("span", { class: "term-notation" }, concept.notation) : null,
        concept.retired ? h("span", { class: "term-retired" }, "(retiré du vocabulaire)") : null,
        machineNodes(suggestion),
      ),
      broaderNode(concept.broader),
      precedentNode(precedent),
      decisionNode(decision),
    );
    // The button of the decision standing does nothing more; "cancel" only when decided.
    for (const [name, button] of Object.entries(this.buttons)) {
      if (name === "undecided") button.hidden = state === "undecided";
      else if (name === state) button.setAttribute("aria-disabled", "true");
      else button.removeAttribute("aria-disabled");
    }
    replace(this.problem);
  }

  /** The button that should hold the focus after a change: `pressed` when still shown. */
  focusAfter(pressed) {
    (pressed && !pressed.hidden ? pressed : this.buttons.accepted).focus();
  }

  setBusy(busy) {
    this.element.setAttribute("aria-busy", String(busy));
  }
}

// ---- the reviewer's decisions -------------------------------------------------------------

/** Decisions on an item's terms: sends them with the token, asks for one when needed. */
class Review {
  constructor(itemId, live, tokenLine) {
    this.itemId = itemId;
    this.live = live;
    this.tokenLine = tokenLine;
    this.sending = new Set();
    this.form = null;
    this.showTokenLine();
  }

  announce(text) {
    // Emptied first, so that the same words twice are said twice.
    replace(this.live);
    window.setTimeout(() => replace(this.live, text), 50);
  }

  async decide(row, decision, button) {
    if (button.getAttribute("aria-disabled") === "true" || this.sending.has(row)) return;
    const token = reviewerToken.get();
    if (!token) {
      this.askToken(row, decision, button);
      return;
    }
    this.sending.add(row);
    row.setBusy(true);
    try {
      const body = { vocabulary: row.term.concept.vocabulary, concept: row.term.concept.id, decision };
      const term = await api.decideTerm(this.itemId, body, token);
      row.show(term);
      this.announce(
        term.decision
          ? `${row.name} ${DECISION_WORDS[term.decision.decision]} par ${term.decision.by}.`
          : `Décision sur ${row.name} annulée.`,
      );
      row.focusAfter(button);
    } catch (error) {
      if (isAbort(error)) return;
      if (isTokenRefused(error)) {
        reviewerToken.forget();
        this.showTokenLine();
        this.askToken(row, decision, button, error);
      } else {
        replace(row.problem, termsError(error));
      }
    } finally {
      this.sending.delete(row);
      row.setBusy(false);
    }
  }

  /** The small form that asks for the token, under the term; the decision is sent once
   * the token is saved. `error`: why the last one was refused. */
  askToken(row, decision, button, error = null) {
    this.closeForm();
    const input = h("input", {
      type: "password",
      id: "reviewer-token",
      name: "token",
      class: "token-input",
      autocomplete: "off",
      spellcheck: "false",
      required: true,
      "aria-describedby": "reviewer-token-hint",
    });
    const close = (focus) => {
      this.closeForm();
      focus?.focus();
    };
    const form = h(
      "form",
      {
        class: "token-form",
        "aria-label": `${decision === "rejected" ? "Rejeter" : "Accepter"} ${row.name} : votre jeton de relecteur`,
        onsubmit: (event) => {
          event.preventDefault();
          const token = input.value.trim();
          if (!token) {
            input.focus();
            return;
          }
          reviewerToken.set(token);
          this.showTokenLine();
          close(button);
          this.decide(row, decision, button);
        },
        // Escape closes the form, not the whole panel.
        onkeydown: (event) => {
          if (event.key !== "Escape") return;
          event.preventDefault();
          event.stopPropagation();
          close(button);
        },
      },
      error ? termsError(error) : null,
      h("label", { for: "reviewer-token", class: "token-label" }, bilingual("Jeton de relecteur", "reviewer’s token")),
      h(
        "p",
        { id: "reviewer-token-hint", class: "token-hint" },
        "Accepter ou rejeter un terme demande le jeton qu’un administrateur vous a donné ; il en crée un avec ",
        h("code", {}, "regard reviewer add NOM --store DOSSIER"),
        ". Il reste dans ce navigateur jusqu’à ce que vous l’oubliiez.",
        " ",
        h("span", { class: "en", lang: "en" }, "An administrator makes one with this command."),
      ),
      h(
        "p",
        { class: "token-row" },
        input,
        h("button", { type: "submit" }, bilingual("Enregistrer", "save")),
        h(
          "button",
          { type: "button", class: "button-secondary", onclick: () => close(button) },
          bilingual("Annuler", "cancel"),
        ),
      ),
    );
    this.form = form;
    row.element.append(form);
    input.focus();
  }

  closeForm() {
    this.form?.remove();
    this.form = null;
  }

  /** Whether a token is kept in this browser, and a way to forget it. */
  showTokenLine() {
    if (!reviewerToken.get()) {
      replace(
        this.tokenLine,
        bilingual(
          "Aucun jeton de relecteur dans ce navigateur : il sera demandé au premier choix.",
          "no reviewer’s token here yet",
        ),
      );
      return;
    }
    const token = reviewerToken.get();
    const asked = (this.tokenAsked = (this.tokenAsked ?? 0) + 1);
    // Whose token it is, said once the service answers, and said before any decision when
    // it is nobody's (mistyped, or taken away by an administrator).
    const say = (...words) => {
      const line = asked === this.tokenAsked && this.tokenLine.querySelector(".token-owner");
      if (line) replace(line, ...words);
    };
    api.reviewer(token).then(
      ({ name }) => say(bilingual(`Jeton de « ${name} » enregistré dans ce navigateur.`, "reviewer’s token saved")),
      (error) => {
        if (isTokenRefused(error)) {
          say(bilingual("Le jeton enregistré n’est celui d’aucun relecteur : oubliez-le, puis saisissez le bon.", "this token is nobody’s"));
        }
      },
    );
    replace(
      this.tokenLine,
      h("span", { class: "token-owner" }, bilingual("Jeton de relecteur enregistré dans ce navigateur.", "reviewer’s token saved")),
      " ",
      h(
        "button",
        {
          type: "button",
          class: "button-secondary token-forget",
          onclick: () => {
            reviewerToken.forget();
            this.showTokenLine();
            this.announce("Jeton de relecteur oublié.");
            this.tokenLine.focus();
          },
        },
        bilingual("Oublier le jeton", "forget the token"),
      ),
    );
  }
}

// ---- the section ----------------------------------------------------------------------------

// The request of the panel shown: a newer panel cancels it, so that an answer that comes
// late never fills the panel of another item.
let shownRequest = null;

function vocabularyBlock(group, titles, review) {
  const title = labelOf(titles.get(group.vocabulary));
  const scoring = group.terms.find((term) => term.suggestion)?.suggestion.scoring;
  return h(
    "div",
    { class: "terms-vocabulary", "data-vocabulary": group.vocabulary },
    h(
      "h4",
      { class: "terms-vocabulary-title" },
      title.text ? h("span", { lang: langAttribute(title.lang) }, title.text, " ") : null,
      h("span", { class: "terms-vocabulary-name" }, group.vocabulary),
    ),
    scoring ? h("p", { class: "terms-scoring" }, SCORING_LINES[scoring]) : null,
    group.terms.length
      ? h(
          "ol",
          { class: "terms-list" },
          group.terms.map((term) => new TermRow(term, review).element),
        )
      : h("p", { class: "terms-hint" }, "Ce vocabulaire n’a aucun terme à proposer pour cette image."),
  );
}

const noVocabulary = () =>
  h(
    "p",
    { class: "terms-hint" },
    "Aucun vocabulaire : un administrateur en ajoute avec ",
    h("code", {}, "regard vocab add FICHIER --store DOSSIER"),
    " (un thésaurus SKOS, CSV ou Joconde). ",
    h("span", { class: "en", lang: "en" }, "No vocabulary in this collection yet."),
  );

const noVector = () =>
  h(
    "p",
    { class: "terms-hint terms-no-vector" },
    "Cette image n’est pas encore indexée : le modèle ne peut pas encore lui proposer de termes. ",
    h("span", { class: "en", lang: "en" }, "Not indexed yet: no terms to suggest."),
  );

async function loadTerms(itemId, body, review) {
  shownRequest?.abort();
  const request = new AbortController();
  shownRequest = request;
  const options = { signal: request.signal };
  // The vocabularies' titles are a nicety: their names do without.
  const titlesAsked = api.vocabularies(options).then(
    (answer) => new Map(answer.vocabularies.map((v) => [v.name, v.title])),
    () => new Map(),
  );
  try {
    const answer = await api.terms(itemId, TERMS_K, options);
    const titles = await titlesAsked;
    if (request.signal.aborted) return;
    const listed = answer.vocabularies.length > 0;
    replace(
      body,
      listed ? answer.vocabularies.map((group) => vocabularyBlock(group, titles, review)) : noVocabulary(),
    );
    // The token matters where there are terms to decide on.
    review.tokenLine.hidden = !listed;
  } catch (error) {
    if (isAbort(error) || request.signal.aborted) return;
    replace(body, error.code === "no_vector" ? noVector() : termsError(error));
  } finally {
    if (shownRequest === request) {
      body.setAttribute("aria-busy", "false");
      shownRequest = null;
    }
  }
}

// Written out in full, as the panel's other links are (the service may sit under a sub-path).
const pageUrl = (path) => new URL(path, document.baseURI).href;

/** The "suggested terms" section of an item's panel; its terms load as it is made. */
export function termsSection(item) {
  const body = h(
    "div",
    { class: "terms-body", "aria-busy": "true" },
    h("p", { class: "status is-busy" }, bilingual("Recherche des termes…", "finding terms")),
  );
  const live = h("p", { class: "visually-hidden terms-live", role: "status", "aria-live": "polite" });
  const tokenLine = h("p", { class: "terms-token", tabindex: "-1", hidden: true });
  const review = new Review(item.id, live, tokenLine);
  loadTerms(item.id, body, review);
  return h(
    "section",
    { class: "terms", "aria-labelledby": "terms-heading" },
    h("h3", { id: "terms-heading", class: "detail-section" }, bilingual("Termes proposés", "suggested terms")),
    h(
      "p",
      { class: "terms-machine-note" },
      h("strong", {}, "Suggestions automatiques — à vérifier"),
      " ",
      h("span", { class: "en", lang: "en" }, "machine suggestions, to be checked"),
      h(
        "span",
        { class: "terms-machine-detail" },
        "Le modèle classe les termes des thésaurus de la collection ; seuls les termes acceptés par une personne sont publiés.",
      ),
    ),
    body,
    live,
    h(
      "footer",
      { class: "terms-footer" },
      h(
        "ul",
        { class: "link-list terms-exports" },
        h(
          "li",
          {},
          h(
            "a",
            { href: pageUrl(termExports.annotations), class: "export-annotations", target: "_blank", rel: "noopener" },
            bilingual("Exporter les termes acceptés (annotations W3C)", "accepted terms as W3C annotations"),
          ),
        ),
        h(
          "li",
          {},
          h(
            "a",
            { href: pageUrl(termExports.csv), class: "export-csv", download: "regard-terms.csv" },
            bilingual("Toutes les décisions (CSV)", "every decision, as CSV"),
          ),
        ),
      ),
      tokenLine,
    ),
  );
}
