// The Regard JSON API, as the viewer uses it. Paths are relative to the page, so the
// viewer also works when the service sits behind a proxy under a sub-path.

/** An error from the API: its code (which the viewer words for people) and its own
 * message, in English, when it gave one. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export const isAbort = (error) => error?.name === "AbortError";

/** The JSON answer of one request; `init` adds to fetch's (a method, a body, headers). */
async function requestJson(path, params = {}, { signal } = {}, init = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined) continue;
    // A list is the parameter repeated (id=A&id=B).
    if (Array.isArray(value)) for (const each of value) url.searchParams.append(name, each);
    else url.searchParams.set(name, value);
  }

  let response;
  try {
    response = await fetch(url, {
      ...init,
      signal,
      headers: { Accept: "application/json", ...init.headers },
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(
      0,
      "network",
      `the service is not answering: ${error.message}`,
    );
  }

  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    if (isAbort(error)) throw error;
  }
  if (!response.ok) throw answeredError(response, body);
  if (body === null) {
    throw new ApiError(response.status, "bad_response", "the answer is not JSON");
  }
  return body;
}

/** The API's error in a failed answer (its JSON body, or null when it had none). */
function answeredError(response, body) {
  const problem = body?.error;
  return new ApiError(
    problem?.status ?? response.status,
    problem?.code ?? "http_error",
    problem?.message ?? `HTTP ${response.status} ${response.statusText}`.trim(),
  );
}

const getJson = (path, params, options) => requestJson(path, params, options);

/**
 * Images exported as a file the browser downloads: CSV, or ("iiif") a IIIF Presentation
 * 3 manifest for Mirador or Universal Viewer, in the order given, named `label` when
 * given. Answers how many of them the collection no longer has (left out of the file).
 */
export async function downloadExport(ids, format, label = null) {
  let response;
  try {
    response = await fetch(new URL(`api/export/selection?format=${format}`, document.baseURI), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ids, label }),
    });
  } catch (error) {
    throw new ApiError(0, "network", `the service is not answering: ${error.message}`);
  }
  if (!response.ok) throw answeredError(response, await response.json().catch(() => null));
  const blob = await response.blob();
  const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1];
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = named ?? `regard-selection.${format === "csv" ? "csv" : "json"}`;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  return { skipped: Number(response.headers.get("X-Regard-Skipped") ?? 0) };
}

/** A picture's bytes, sent as they are under their own type (image/jpeg, image/png…). */
const postPicture = (path, params, file, options) =>
  requestJson(path, params, options, {
    method: "POST",
    body: file,
    headers: { "Content-Type": file.type || "application/octet-stream" },
  });

/** JSON sent with a verb (PUT…), with a reviewer's token when there is one. */
const sendJson = (method, path, body, token, options) =>
  requestJson(path, {}, options, {
    method,
    body: JSON.stringify(body),
    headers: {
      "Content-Type": "application/json",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
  });

const termsPath = (id) => `api/items/${encodeURIComponent(id)}/terms`;

/** Where the reviewers' decisions are exported (links, relative to the page). */
export const termExports = {
  annotations: "api/export/annotations",
  csv: "api/export/terms.csv",
};

export const api = {
  /** The images closest to a text and to the items it likes, away from those it unlikes
   * ({like, unlike}: lists of ids; with likes the text may be empty), and the items whose
   * catalogue record holds every word of the text (`records`, null without words). */
  search: (q, k, { like = [], unlike = [] } = {}, options) =>
    getJson("api/search", { q: q ?? "", k, like, unlike, records: "true" }, options),
  /** The images like a picture (a File or Blob). */
  searchImage: (file, k, options) => postPicture("api/search/image", { k }, file, options),
  /** The neighbours of an item, or of a part of it (`region`: "pct:x,y,w,h", or null). */
  similar: (id, k, region, options) =>
    getJson(`api/items/${encodeURIComponent(id)}/similar`, { k, region }, options),
  item: (id, options) => getJson(`api/items/${encodeURIComponent(id)}`, {}, options),
  stats: (options) => getJson("api/stats", {}, options),
  vocabularies: (options) => getJson("api/vocabularies", {}, options),
  /** The draft subject terms of an item: each vocabulary's `k` best, then those decided. */
  terms: (id, k, options) => getJson(termsPath(id), { k }, options),
  /** Whose a reviewer's token is: {name}, or an ApiError (401) for a token nobody has. */
  reviewer: (token, options) =>
    requestJson("api/reviewer", {}, options, { headers: { Authorization: `Bearer ${token}` } }),
  /** A reviewer's decision on a term: {vocabulary, concept, decision}; answers the term. */
  decideTerm: (id, decision, token, options) => sendJson("PUT", termsPath(id), decision, token, options),
  /** The map of the collection: its counts, whether it is stale, its clusters. */
  map: (options) => getJson("api/map", {}, options),
  /** A page of the map's points after the point `after` (0: the first page), as columns:
   * {total, next, ids, x, y, cluster}; `next` is the next page's `after` (null: none). */
  mapPoints: (after, limit, options) => getJson("api/map/points", { after, limit }, options),
  /** One cluster and its `k` items nearest its centre: {cluster, k, results}. */
  cluster: (id, k, options) => getJson(`api/clusters/${encodeURIComponent(id)}`, { k }, options),
  /** Several items' summaries (at most MAX_SUMMARIES ids): {items, unknown}. */
  summaries: (ids, options) => getJson("api/items", { id: ids }, options),
};

/** The most ids one /api/items request takes. */
export const MAX_SUMMARIES = 200;
