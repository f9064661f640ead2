// What each of the API's error codes means to a curator or a cataloguer, in French, and
// the notice that shows it: the French wording first, then the API's own message (in
// English, for developers) and its status and code. One table for the whole viewer: the
// search (app.js), the draft subject terms (terms.js) and the map (map.js).

import { bilingual, formatCount, h } from "./dom.js";
import { MAX_EXAMPLES } from "./state.js";

/** The largest picture the service takes, as its message says it ("the limit is 33,554,432
 * bytes"), for people ("32 Mo"); null when the message does not say it. */
function uploadLimit(message) {
  const match = /limit is ([\d,.\s]+) bytes/i.exec(message ?? "");
  const bytes = match ? Number(match[1].replace(/\D/g, "")) : Number.NaN;
  if (!(bytes > 0)) return null;
  const size = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
  if (bytes >= 1024 ** 2) return `${size.format(bytes / 1024 ** 2)} Mo`;
  if (bytes >= 1024) return `${size.format(bytes / 1024)} Ko`;
  return `${formatCount(bytes)} octets`;
}

/** Each code's wording: a text, or a function of the error and of what was asked for
 * (`many`: "résultats", "termes"…, the things of which the service gives fewer). */
const ERROR_TEXTS = {
  // search and "more like this"
  empty_query: "Saisissez quelques mots à chercher, par exemple « fauteuil en fer forgé ».",
  query_too_long: "La recherche est trop longue : raccourcissez-la.",
  k_out_of_range: (error, { many = "résultats" } = {}) => `Le service ne donne pas autant de ${many} à la fois.`,
  unknown_item: "Cette image n’est pas dans la collection : le lien est peut-être ancien.",
  no_vector: "Cette image n’est pas encore indexée : elle n’a pas encore de voisines.",
  empty_upload: "Le fichier choisi est vide : choisissez une image.",
  upload_too_large: (error) => {
    const limit = uploadLimit(error.message);
    return limit
      ? `Cette image est trop lourde : le service en prend jusqu’à ${limit}. Choisissez-en une plus légère.`
      : "Cette image est trop lourde pour le service : choisissez-en une plus légère.";
  },
  not_an_image: "Ce fichier n’est pas une image lisible : choisissez une photo ou un dessin (JPEG, PNG, WebP…).",
  bad_region: "La partie choisie est vide ou sort de l’image : tracez-en une autre.",
  picture_unavailable:
    "Le service n’a pas pu obtenir cette image de son serveur d’images : réessayez dans un instant.",
  // draft subject terms
  token_required: "Il faut un jeton de relecteur pour accepter ou rejeter un terme : saisissez le vôtre.",
  unknown_token:
    "Ce jeton n’est celui d’aucun relecteur (mal recopié, ou retiré) : vérifiez-le, ou demandez-en un à un administrateur.",
  unknown_vocabulary: "Ce vocabulaire n’est plus dans la collection : rouvrez la fiche pour voir ceux qui y sont.",
  unknown_concept: "Ce terme n’est plus dans le vocabulaire : rouvrez la fiche pour voir ses termes actuels.",
  storage_full:
    "Le disque du serveur est plein (ou n’accepte plus d’écriture) : votre décision n’a pas été enregistrée. Prévenez un administrateur, puis réessayez.",
  // the map
  no_map:
    "La collection n’a pas encore de carte : un administrateur la fait avec la commande « regard map ». La recherche, elle, fonctionne.",
  unknown_cluster: "Ce groupe n’est plus sur la carte (elle a été refaite depuis) : choisissez-en un dans la liste.",
  limit_out_of_range: "Le service ne donne pas autant de points de la carte à la fois.",
  too_many_ids: "Le service ne donne pas autant d’images à la fois.",
  empty_selection: "La sélection est vide : entourez quelques points de la carte au lasso.",
  selection_too_large: "La sélection est trop grande pour un seul export : entourez-en une partie.",
  unknown_items: "Ces images ne sont plus dans la collection (la carte date d’avant leur retrait) : rien à exporter.",
  // any request
  invalid_request: "Le service n’a pas compris la demande.",
  network: "Le service ne répond pas : réessayez dans un instant.",
  bad_response: "La réponse du service est illisible.",
};

// ---- combined searches (?like=, ?unlike=: app.js, query-chips.js) ----------------------
// Their own codes, and the codes said of an item (unknown_item, no_vector) when the item is
// one of a search's examples, shown as a chip under the search box.
const EXAMPLE_TEXTS = {
  unknown_item:
    "Une image de cette recherche n’est plus dans la collection : retirez-la (×) sous la barre de recherche.",
  no_vector:
    "Une image de cette recherche n’est pas indexée (pas encore, ou plus) : elle ne peut pas servir d’exemple ; retirez-la (×) sous la barre de recherche.",
};
const COMBINED_TEXTS = {
  too_many_examples: `Une recherche prend au plus ${MAX_EXAMPLES} images en exemple : retirez-en (×) sous la barre de recherche.`,
  like_and_unlike: "Une même image ne peut pas être à la fois « comme » et « pas comme » : retirez-la de l’un des deux.",
  query_cancels_out:
    "Les images à suivre et celles à éviter s’annulent : retirez-en une (×) sous la barre de recherche.",
};
// ---- end of combined searches ------------------------------------------------------------

/** The French wording of an error; `context.many` names what a `k_out_of_range` was about,
 * `context.examples` how many items the search had as examples (see EXAMPLE_TEXTS). */
export function errorText(error, context = {}) {
  const wording =
    (context.examples ? EXAMPLE_TEXTS[error.code] : undefined) ?? COMBINED_TEXTS[error.code] ?? ERROR_TEXTS[error.code];
  return (typeof wording === "function" ? wording(error, context) : wording) ?? "Le service n’a pas pu répondre.";
}

/**
 * The viewer's error notice. `action` and `note` (nodes) go under the message; `className`
 * is added to the notice's; `many` and `examples` are passed to the wording (see `errorText`).
 */
export function errorNotice(error, { action = null, note = null, className = null, many, examples } = {}) {
  return h(
    "div",
    { class: ["notice notice-error", className].filter(Boolean).join(" "), role: "alert" },
    h("p", { class: "notice-title" }, bilingual("Erreur", "error")),
    h("p", { class: "notice-message" }, errorText(error, { many, examples })),
    h("p", { class: "notice-detail", lang: "en" }, error.message),
    action,
    note,
    error.status ? h("p", { class: "notice-code" }, `${error.status} · ${error.code}`) : null,
  );
}
