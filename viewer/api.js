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

async function getJson(path, params = {}, { signal } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);

  let response;
  try {
    response = await fetch(url, { signal, headers: { Accept: "application/json" } });
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
  if (!response.ok) {
    const problem = body?.error;
    throw new ApiError(
      problem?.status ?? response.status,
      problem?.code ?? "http_error",
      problem?.message ?? `HTTP ${response.status} ${response.statusText}`.trim(),
    );
  }
  if (body === null) {
    throw new ApiError(response.status, "bad_response", "the answer is not JSON");
  }
  return body;
}

export const api = {
  search: (q, k, options) => getJson("api/search", { q, k }, options),
  similar: (id, k, options) =>
    getJson(`api/items/${encodeURIComponent(id)}/similar`, { k }, options),
  item: (id, options) => getJson(`api/items/${encodeURIComponent(id)}`, {}, options),
  stats: (options) => getJson("api/stats", {}, options),
};
