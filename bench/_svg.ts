/**
 * A hand-rolled SVG line chart (no plotting service, no dependency): one line
 * per series, x values as evenly spaced categories (concurrency 1/8/64/256 is
 * roughly logarithmic, so equal spacing reads best), y linear from zero.
 *
 * @module
 */

/** One line on the chart. */
export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

// Colour-blind-safe palette (Okabe-Ito).
const COLORS = ["#0072B2", "#56B4E9", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#000000", "#F0E442"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A "nice" axis maximum (a round step times a power of ten) at or above `v`. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** Renders the chart as a standalone SVG document. */
export function lineChart(
  series: Series[],
  opts: { title: string; xLabel: string; yLabel: string },
): string {
  const W = 720, H = 420;
  const m = { l: 80, r: 220, t: 40, b: 50 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const yMax = niceMax(Math.max(0, ...series.flatMap((s) => s.points.map((p) => p.y))));
  const px = (x: number) => m.l + (xs.length > 1 ? (xs.indexOf(x) / (xs.length - 1)) * pw : pw / 2);
  const py = (y: number) => m.t + ph - (y / yMax) * ph;

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="15" font-weight="bold">${esc(opts.title)}</text>`,
  ];
  // Horizontal grid lines with y labels.
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5, y = py(v).toFixed(1);
    out.push(
      `<line x1="${m.l}" x2="${m.l + pw}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${m.l - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${v.toLocaleString("en-US")}</text>`,
    );
  }
  for (const x of xs) {
    out.push(
      `<text x="${px(x).toFixed(1)}" y="${m.t + ph + 18}" text-anchor="middle">${x}</text>`,
    );
  }
  out.push(
    `<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`,
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`,
    `<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(opts.xLabel)}</text>`,
    `<text transform="translate(18 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x)
      .map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`);
    out.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(" ")}"/>`,
      ...pts.map((p) => {
        const [cx, cy] = p.split(",");
        return `<circle cx="${cx}" cy="${cy}" r="3" fill="${color}"/>`;
      }),
    );
    const ly = m.t + 10 + i * 20;
    out.push(
      `<line x1="${m.l + pw + 16}" x2="${m.l + pw + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${m.l + pw + 46}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
