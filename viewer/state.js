// The viewer's state lives in the URL, so that every view can be shared and the
// back button works:
//   ?q=red+circle          search results (an empty q is sent as is: the API explains)
//   &like=ID&unlike=ID     with q, or alone: a combined search, the text's meaning plus
//                          each liked item's picture, minus each unliked one's (at most
//                          MAX_EXAMPLES in all; repeatable); likes alone need no q
//   ?similar=ID            the neighbours of one item
//   &region=pct:x,y,w,h    with similar: the neighbours of a part of the item, in
//                          percentages of its picture as the viewer shows it
//   ?picture=ID            the images like a picture the user chose or dropped; the file
//                          itself stays in the page's memory (app.js), ID names it there,
//                          and a reloaded or shared URL asks for the picture again
//   &item=ID               the detail panel, open over any of these views
//   &k=48                  how many results (default DEFAULT_K)
//   &map=1                 the map of the collection, over any of these views (which
//                          closing it shows again)
//   &cluster=ID            with map: one cluster selected, its items listed
//   &view=x,y,zoom         with map: the view's centre (0..1 across and down) and zoom
//                          (1: the whole map), as map.js writes it

export const DEFAULT_K = 24;
export const K_STEP = 24;
/** The most items one search may like and unlike, together (the API's limit). */
export const MAX_EXAMPLES = 8;

/** A parameter's values, each once, in their order. */
const idsOf = (params, name) => [...new Set(params.getAll(name).filter(Boolean))];

export function readState(search = window.location.search) {
  const params = new URLSearchParams(search);
  const k = Number.parseInt(params.get("k") ?? "", 10);
  return {
    q: params.has("q") ? params.get("q") : null,
    like: idsOf(params, "like"),
    unlike: idsOf(params, "unlike"),
    similar: params.get("similar") || null,
    region: params.get("region") || null,
    picture: params.get("picture") || null,
    item: params.get("item") || null,
    k: Number.isFinite(k) && k > 0 ? k : DEFAULT_K,
    map: params.has("map") && params.get("map") !== "0",
    cluster: /^\d+$/.test(params.get("cluster") ?? "") ? Number(params.get("cluster")) : null,
    view: params.get("view") || null,
  };
}

/** What the results area shows: "similar", "picture", "search" or "home". */
export function viewOf(state) {
  if (state.similar) return "similar";
  if (state.picture) return "picture";
  if (state.q !== null || state.like.length || state.unlike.length) return "search";
  return "home";
}

/** A key that changes when the results must be fetched again. */
export function resultsKey(state) {
  const view = viewOf(state);
  if (view === "similar") return `similar\u0000${state.similar}\u0000${state.region ?? ""}\u0000${state.k}`;
  if (view === "picture") return `picture\u0000${state.picture}\u0000${state.k}`;
  if (view === "search") {
    return ["search", state.q ?? "", state.like.join(" "), state.unlike.join(" "), state.k].join("\u0000");
  }
  return "home";
}

/** The URL query string for a state ("?…", or "./" for the home page). */
export function toUrl(state) {
  const params = new URLSearchParams();
  if (state.similar) {
    params.set("similar", state.similar);
    if (state.region) params.set("region", state.region);
  } else if (state.picture) {
    params.set("picture", state.picture);
  } else {
    const like = state.like ?? [];
    const unlike = state.unlike ?? [];
    // Liked items are a search of their own: an empty q beside them says nothing.
    if (state.q !== null && state.q !== undefined && (state.q !== "" || like.length === 0)) {
      params.set("q", state.q);
    }
    for (const id of like) params.append("like", id);
    for (const id of unlike) params.append("unlike", id);
  }
  if (state.item) params.set("item", state.item);
  if (state.k && state.k !== DEFAULT_K) params.set("k", String(state.k));
  if (state.map) {
    params.set("map", "1");
    if (state.cluster !== null && state.cluster !== undefined) params.set("cluster", String(state.cluster));
    if (state.view) params.set("view", state.view);
  }
  // A region and a view read as they are written ("pct:10,20,30,40", "0.5,0.5,1"): ":"
  // and "," need no escape there.
  const query = params
    .toString()
    .replace(/(^|&)(region|view)=([^&]*)/g, (_, sep, name, value) => `${sep}${name}=${value.replace(/%3A/gi, ":").replace(/%2C/gi, ",")}`);
  return query ? `?${query}` : "./";
}
