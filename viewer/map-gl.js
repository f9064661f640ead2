// Drawing the map's points: WebGL (gl.POINTS, one buffer per page of points as it
// arrives), or Canvas 2D where WebGL is missing or lost. No DOM element per point: a
// million points are a few typed arrays and one draw call per page.
//
// Both renderers draw the same picture: each point a disc of its cluster's colour, those
// of the selected cluster over the others, which step back towards the paper. A frame is
// {width, height} (the canvas in device pixels), {cx, cy} (the map point at the centre,
// 0..1), `scale` (device pixels per map unit), `size` (a point's diameter in device
// pixels) and `selected` (a cluster id, or -1).

/** Forty colours told apart on the viewer's paper (greedy farthest points in CIELAB, at
 * least 26 ΔE from each other and from the paper and the ink). The map has at most 40
 * clusters (indexer/map_clusters.py): each has its own. */
export const PALETTE = [
  "#e11e4b", "#0000ff", "#00d200", "#0087ff", "#f0b400", "#ff3ce1", "#009669", "#964b87",
  "#874b0f", "#00b4e1", "#ff690f", "#78960f", "#5a1eb4", "#f09696", "#c3b4f0", "#004b87",
  "#87875a", "#d287ff", "#c300ff", "#e10f87", "#5ad269", "#871e2d", "#0f5a00", "#f0b469",
  "#006969", "#a51e00", "#ff87d2", "#96d200", "#a50f96", "#ff001e", "#69d2c3", "#ff785a",
  "#4b4b00", "#96c378", "#c37800", "#005aff", "#4b4bb4", "#b45aff", "#4b96e1", "#693c2d",
];

/** The colour of a cluster, as CSS. */
export const clusterColour = (id) => PALETTE[((id % PALETTE.length) + PALETTE.length) % PALETTE.length];

const PAPER = [246, 244, 239];
/** How far a point of another cluster than the selected one steps back to the paper. */
const DIMMED = 0.72;

const rgbOf = (hex) => [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
const PALETTE_RGB = PALETTE.map(rgbOf);
const dimmed = (rgb) => rgb.map((v, i) => Math.round(v + (PAPER[i] - v) * DIMMED));

// ---- WebGL ------------------------------------------------------------------------------

const VERTEX_SHADER = `
attribute vec2 a_position;
attribute float a_cluster;
uniform vec2 u_centre;
uniform vec2 u_half;        // half the canvas, in device pixels
uniform float u_scale;
uniform float u_size;
uniform float u_selected;   // -1: none
uniform float u_pass;       // 0: every point, 1: the selected cluster's only
uniform vec3 u_palette[${PALETTE.length}];
varying vec3 v_colour;
void main() {
  vec2 screen = (a_position - u_centre) * u_scale;
  gl_Position = vec4(screen.x / u_half.x, -screen.y / u_half.y, 0.0, 1.0);
  bool chosen = abs(a_cluster - u_selected) < 0.5;
  gl_PointSize = (u_pass > 0.5 && !chosen) ? 0.0 : u_size;
  vec3 colour = u_palette[int(mod(a_cluster + 0.5, ${PALETTE.length}.0))];
  if (u_selected > -0.5 && !chosen) colour = mix(colour, vec3(${PAPER.map((v) => (v / 255).toFixed(4)).join(", ")}), ${DIMMED});
  v_colour = colour;
}`;

const FRAGMENT_SHADER = `
precision mediump float;
varying vec3 v_colour;
uniform float u_rim;        // 1: large points, with a rim
void main() {
  vec2 d = gl_PointCoord - vec2(0.5);
  float r2 = dot(d, d);
  if (r2 > 0.25) discard;
  // Large points get a darker rim, so that those lying over each other stay apart.
  float rim = u_rim > 0.5 && r2 > 0.16 ? 0.7 : 1.0;
  gl_FragColor = vec4(v_colour * rim, 1.0);
}`;

function compile(gl, type, source) {
  const shader = gl.createShader(type);
  gl.shaderSource(shader, source);
  gl.compileShader(shader);
  if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) {
    throw new Error(`map shader: ${gl.getShaderInfoLog(shader)}`);
  }
  return shader;
}

class WebGLPoints {
  kind = "webgl";

  constructor(canvas, gl, onLost) {
    this.canvas = canvas;
    this.gl = gl;
    this.pages = []; // {buffer, count}
    this.lost = false;
    canvas.addEventListener("webglcontextlost", (event) => {
      event.preventDefault();
      this.lost = true;
      onLost?.();
    });
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) {
      throw new Error(`map shaders: ${gl.getProgramInfoLog(program)}`);
    }
    gl.useProgram(program);
    this.position = gl.getAttribLocation(program, "a_position");
    this.cluster = gl.getAttribLocation(program, "a_cluster");
    this.uniforms = Object.fromEntries(
      ["u_centre", "u_half", "u_scale", "u_size", "u_rim", "u_selected", "u_pass", "u_palette"].map((name) => [
        name,
        gl.getUniformLocation(program, name),
      ]),
    );
    gl.uniform3fv(this.uniforms.u_palette, new Float32Array(PALETTE_RGB.flat().map((v) => v / 255)));
    gl.enableVertexAttribArray(this.position);
    gl.enableVertexAttribArray(this.cluster);
    [this.minSize, this.maxSize] = gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE);
  }

  /** Points [start, end) of `points` ({xs, ys, clusters}) as one buffer: x, y, cluster. */
  addRange(points, start, end) {
    if (this.lost || end <= start) return;
    const { gl } = this;
    const data = new Float32Array((end - start) * 3);
    for (let i = start, j = 0; i < end; i += 1, j += 3) {
      data[j] = points.xs[i];
      data[j + 1] = points.ys[i];
      data[j + 2] = points.clusters[i];
    }
    const buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    this.pages.push({ buffer, count: end - start });
  }

  clear() {
    for (const page of this.pages) if (!this.lost) this.gl.deleteBuffer(page.buffer);
    this.pages = [];
  }

  draw(frame) {
    if (this.lost) return;
    const { gl, uniforms } = this;
    gl.viewport(0, 0, frame.width, frame.height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    gl.uniform2f(uniforms.u_centre, frame.cx, frame.cy);
    gl.uniform2f(uniforms.u_half, frame.width / 2, frame.height / 2);
    gl.uniform1f(uniforms.u_scale, frame.scale);
    gl.uniform1f(uniforms.u_size, Math.min(Math.max(frame.size, this.minSize), this.maxSize));
    gl.uniform1f(uniforms.u_rim, frame.size >= 7 ? 1 : 0);
    gl.uniform1f(uniforms.u_selected, frame.selected);
    // The selected cluster's points are drawn again over the others.
    for (const pass of frame.selected >= 0 ? [0, 1] : [0]) {
      gl.uniform1f(uniforms.u_pass, pass);
      for (const page of this.pages) {
        gl.bindBuffer(gl.ARRAY_BUFFER, page.buffer);
        gl.vertexAttribPointer(this.position, 2, gl.FLOAT, false, 12, 0);
        gl.vertexAttribPointer(this.cluster, 1, gl.FLOAT, false, 12, 8);
        gl.drawArrays(gl.POINTS, 0, page.count);
      }
    }
  }
}

// ---- Canvas 2D --------------------------------------------------------------------------

/** The fallback: small points are written straight into the pixels (a million take some
 * milliseconds), larger ones are discs, one path per colour. */
class CanvasPoints {
  kind = "canvas";

  constructor(canvas, context) {
    this.canvas = canvas;
    this.context = context;
    this.points = null;
    this.count = 0;
  }

  addRange(points, start, end) {
    this.points = points;
    this.count = Math.max(this.count, end);
  }

  clear() {
    this.points = null;
    this.count = 0;
  }

  draw(frame) {
    const { context } = this;
    context.clearRect(0, 0, frame.width, frame.height);
    if (!this.points || this.count === 0) return;
    const passes = frame.selected >= 0 ? [0, 1] : [0];
    if (frame.size <= 4) this.drawPixels(frame, passes);
    else for (const pass of passes) this.drawDiscs(frame, pass);
  }

  /** The points in view, as [i, screen x, screen y] for those of `pass`. */
  *visible(frame, pass) {
    const { xs, ys, clusters } = this.points;
    const halfW = frame.width / 2;
    const halfH = frame.height / 2;
    const margin = frame.size;
    for (let i = 0; i < this.count; i += 1) {
      if (pass === 1 && clusters[i] !== frame.selected) continue;
      const sx = (xs[i] - frame.cx) * frame.scale + halfW;
      const sy = (ys[i] - frame.cy) * frame.scale + halfH;
      if (sx < -margin || sy < -margin || sx > frame.width + margin || sy > frame.height + margin) continue;
      yield [i, sx, sy];
    }
  }

  colourOf(cluster, selected) {
    const rgb = PALETTE_RGB[((cluster % PALETTE.length) + PALETTE.length) % PALETTE.length];
    return selected >= 0 && cluster !== selected ? dimmed(rgb) : rgb;
  }

  drawPixels(frame, passes) {
    const { width, height } = frame;
    const image = this.context.createImageData(width, height);
    const pixels = new Uint32Array(image.data.buffer);
    // ABGR in memory on little-endian machines (all that run browsers today).
    const packed = new Map();
    const packedOf = (cluster) => {
      let colour = packed.get(cluster);
      if (colour === undefined) {
        const [r, g, b] = this.colourOf(cluster, frame.selected);
        colour = ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
        packed.set(cluster, colour);
      }
      return colour;
    };
    const side = Math.max(1, Math.round(frame.size));
    const half = Math.floor(side / 2);
    for (const pass of passes) {
      for (const [i, sx, sy] of this.visible(frame, pass)) {
        const colour = packedOf(this.points.clusters[i]);
        const left = Math.round(sx) - half;
        const top = Math.round(sy) - half;
        for (let y = Math.max(0, top); y < Math.min(height, top + side); y += 1) {
          for (let x = Math.max(0, left); x < Math.min(width, left + side); x += 1) pixels[y * width + x] = colour;
        }
      }
    }
    this.context.putImageData(image, 0, 0);
  }

  drawDiscs(frame, pass) {
    const { context } = this;
    const radius = frame.size / 2;
    const paths = new Map();
    for (const [i, sx, sy] of this.visible(frame, pass)) {
      const cluster = this.points.clusters[i];
      let path = paths.get(cluster);
      if (!path) paths.set(cluster, (path = new Path2D()));
      path.moveTo(sx + radius, sy);
      path.arc(sx, sy, radius, 0, 2 * Math.PI);
    }
    for (const [cluster, path] of paths) {
      const [r, g, b] = this.colourOf(cluster, frame.selected);
      context.fillStyle = `rgb(${r}, ${g}, ${b})`;
      context.fill(path);
      if (frame.size >= 7) {
        context.strokeStyle = `rgba(0, 0, 0, 0.3)`;
        context.lineWidth = Math.max(1, frame.size * 0.08);
        context.stroke(path);
      }
    }
  }
}

/**
 * A renderer for `canvas`: WebGL when the browser gives it, else Canvas 2D (or when
 * `canvasOnly`). `onLost` is called when the WebGL context is lost (a GPU reset): draw on
 * a new canvas then, with `canvasOnly`.
 */
export function createRenderer(canvas, { canvasOnly = false, onLost = null } = {}) {
  if (!canvasOnly) {
    let gl = null;
    try {
      // preserveDrawingBuffer: what is drawn stays readable (a screenshot, a test).
      gl = canvas.getContext("webgl", { alpha: true, antialias: false, preserveDrawingBuffer: true });
    } catch {
      gl = null;
    }
    if (gl) {
      try {
        return new WebGLPoints(canvas, gl, onLost);
      } catch (error) {
        // A shader this GPU does not take: a canvas that had WebGL cannot give 2D.
        console.warn(error);
        return null;
      }
    }
  }
  const context = canvas.getContext("2d");
  return context ? new CanvasPoints(canvas, context) : null;
}
