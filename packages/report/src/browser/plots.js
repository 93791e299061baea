// The report's plots, inlined into report.html by render.ts: plain DOM and SVG, no libraries.
// It reads the JSON block #report-data (PlotSpec in render.ts) and draws every plot into its
// section. Two plot kinds:
//   linePlot: one series per variant against steps or wall time; the seeds' mean as the line, their
//             min–max as a band; dashed baselines (the warm start); a hover tooltip.
//   dotPlot:  one value per variant (mean ± SE whiskers) with the seeds' values as hollow dots.
// Every plot's <svg> carries data-plot="<id>", every series' <g> data-series="<variant>".
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 640;
  const PLOT_HEIGHT = 230;
  const MARGIN = { left: 64, right: 18, bottom: 48 };
  const LEGEND_ROW = 18;
  const MUTED = "#6e7781";

  const data = JSON.parse(document.getElementById("report-data").textContent);
  const colorOf = new Map(data.variants.map((v) => [v.name, v.color]));

  // --- small helpers ------------------------------------------------------------------------------

  function svgEl(parent, tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    parent.appendChild(e);
    return e;
  }

  function svgText(parent, x, y, content, attrs = {}) {
    const t = svgEl(parent, "text", { x, y, fill: "#1f2328", ...attrs });
    t.textContent = content;
    return t;
  }

  /** Round ticks covering [lo, hi] in steps of 1, 2 or 5 × 10^k (whole numbers when `integer`). */
  function niceTicks(lo, hi, target, integer) {
    if (!(hi > lo)) {
      const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
      lo -= pad;
      hi += pad;
    }
    const raw = (hi - lo) / target;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    let step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw * (1 - 1e-9));
    if (integer) step = Math.max(1, Math.round(step));
    const first = Math.floor(lo / step + 1e-9) * step;
    const last = Math.ceil(hi / step - 1e-9) * step;
    const ticks = [];
    for (let i = 0; first + i * step <= last + step * 1e-9; i++)
      ticks.push(Number((first + i * step).toPrecision(12)));
    return { lo: first, hi: last, step, ticks };
  }

  /** A formatter with as many decimals as the tick step needs. */
  function tickFormat(step) {
    const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
    return (v) => (Math.abs(v) >= 1e4 ? `${Number((v / 1000).toFixed(1))}k` : v.toFixed(decimals));
  }

  /** A value in a tooltip: four significant digits. */
  function valueFormat(v) {
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(2) : String(Number(v.toPrecision(4)));
  }

  /** Seconds are shown in s, min or h, whichever suits the longest run. */
  function timeUnit(maxSeconds) {
    if (maxSeconds < 120) return { factor: 1, name: "s" };
    if (maxSeconds < 7200) return { factor: 1 / 60, name: "min" };
    return { factor: 1 / 3600, name: "h" };
  }

  /** The y range: the data with a margin, within [0, 1] for fractions, never below 0 for data ≥ 0. */
  function yTicks(values, unit) {
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    const pad = Math.max((hi - lo) * 0.08, unit ? 0.02 : Math.abs(hi) * 0.02);
    const nonNegative = lo >= 0;
    lo -= pad;
    hi += pad;
    if (nonNegative) lo = Math.max(0, lo);
    if (unit) hi = Math.min(1, hi);
    const t = niceTicks(lo, hi, 5, false);
    if (nonNegative) t.lo = Math.max(0, t.lo);
    if (unit) t.hi = Math.min(1, t.hi);
    t.ticks = t.ticks.filter((v) => v >= t.lo - 1e-9 && v <= t.hi + 1e-9);
    return t;
  }

  /** The x range: from 0 (or below, if the data is) to the last point, with round ticks inside. */
  function xTicks(xs, integer) {
    const lo = Math.min(0, ...xs);
    const hi = Math.max(...xs);
    const t = niceTicks(lo, hi, 6, integer);
    if (hi > lo) {
      t.lo = lo;
      t.hi = hi;
      t.ticks = t.ticks.filter((v) => v >= lo - 1e-9 && v <= hi + 1e-9);
    }
    return t;
  }

  // --- legend, frame and axes ---------------------------------------------------------------------

  /** Legend items laid out left to right, wrapping into rows; widths estimated from the text. */
  function layoutLegend(items) {
    const right = WIDTH - MARGIN.right;
    let x = MARGIN.left;
    let row = 0;
    const placed = items.map((item) => {
      const width = 30 + item.label.length * 6.6;
      if (x + width > right && x > MARGIN.left) {
        row += 1;
        x = MARGIN.left;
      }
      const at = { ...item, x, y: 14 + row * LEGEND_ROW };
      x += width + 14;
      return at;
    });
    return { placed, height: (row + 1) * LEGEND_ROW };
  }

  function drawLegend(svg, legend) {
    for (const item of legend.placed) {
      const g = svgEl(svg, "g", { class: "legend-item", "data-legend": item.label });
      if (item.band)
        svgEl(g, "rect", { x: item.x, y: item.y - 6, width: 22, height: 10, fill: item.color, opacity: 0.2 });
      if (!item.noLine)
        svgEl(g, "line", {
          x1: item.x,
          x2: item.x + 22,
          y1: item.y - 1,
          y2: item.y - 1,
          stroke: item.color,
          "stroke-width": item.dashed ? 1.5 : 2.5,
          "stroke-dasharray": item.dashed ? "5 4" : "none",
        });
      if (item.marker) svgEl(g, "circle", { cx: item.x + 11, cy: item.y - 1, r: 3.5, fill: item.color });
      svgText(g, item.x + 28, item.y + 3, item.label, {
        "font-size": 12,
        fill: item.muted ? MUTED : "#1f2328",
      });
    }
  }

  function newSvg(figure, plot, height) {
    const svg = svgEl(figure, "svg", {
      viewBox: `0 0 ${WIDTH} ${height}`,
      "data-plot": plot.id,
      role: "img",
      "aria-label": plot.title,
    });
    return svg;
  }

  function frameFor(legend) {
    const top = legend.height + 18;
    return { left: MARGIN.left, right: WIDTH - MARGIN.right, top, bottom: top + PLOT_HEIGHT };
  }

  /** Grid, tick labels, axis lines and axis labels; x ticks only when `x` is given. */
  function drawAxes(svg, frame, x, y, xLabel, yLabel) {
    const g = svgEl(svg, "g", { class: "axes" });
    const yFormat = tickFormat(y.ticks.step);
    for (const v of y.ticks.ticks) {
      const py = y.scale(v);
      svgEl(g, "line", { class: "grid-line", x1: frame.left, x2: frame.right, y1: py, y2: py });
      const tick = svgEl(g, "g", { class: "tick" });
      svgText(tick, frame.left - 7, py + 4, yFormat(v), { "text-anchor": "end" });
    }
    if (x) {
      const xFormat = tickFormat(x.ticks.step);
      for (const v of x.ticks.ticks) {
        const px = x.scale(v);
        svgEl(g, "line", { class: "axis", x1: px, x2: px, y1: frame.bottom, y2: frame.bottom + 4 });
        const tick = svgEl(g, "g", { class: "tick" });
        svgText(tick, px, frame.bottom + 17, xFormat(v), { "text-anchor": "middle" });
      }
    }
    svgEl(g, "line", { class: "axis", x1: frame.left, x2: frame.left, y1: frame.top, y2: frame.bottom });
    svgEl(g, "line", { class: "axis", x1: frame.left, x2: frame.right, y1: frame.bottom, y2: frame.bottom });
    svgText(g, (frame.left + frame.right) / 2, frame.bottom + 38, xLabel, {
      "text-anchor": "middle",
      "font-size": 12.5,
    });
    const midY = (frame.top + frame.bottom) / 2;
    svgText(g, 16, midY, yLabel, {
      "text-anchor": "middle",
      "font-size": 12.5,
      transform: `rotate(-90 16 ${midY})`,
    });
  }

  function drawBaselines(svg, frame, plot, sy) {
    for (const b of plot.baselines) {
      const py = sy(b.value);
      svgEl(svg, "line", {
        class: "baseline",
        x1: frame.left,
        x2: frame.right,
        y1: py,
        y2: py,
        stroke: b.variant ? colorOf.get(b.variant) : MUTED,
        "stroke-width": 1.5,
        "stroke-dasharray": "5 4",
      });
    }
  }

  function noData(svg, frame) {
    svgText(svg, (frame.left + frame.right) / 2, (frame.top + frame.bottom) / 2, "no data", {
      "text-anchor": "middle",
      "font-size": 14,
      fill: MUTED,
    });
  }

  function legendItems(plot, series) {
    return [
      ...series.map((s) => ({
        label: s.points.length === 0 ? `${s.variant} (no data)` : s.variant,
        color: colorOf.get(s.variant),
        band: plot.kind === "line" && s.points.some((p) => p[4] > 1),
        marker: plot.markers || plot.kind === "dots",
        noLine: plot.kind === "dots",
        muted: s.points.length === 0,
      })),
      ...plot.baselines.map((b) => ({
        label: b.label,
        color: b.variant ? colorOf.get(b.variant) : MUTED,
        dashed: true,
      })),
    ];
  }

  // --- plot kinds ---------------------------------------------------------------------------------

  /** Series against steps or wall time: mean line, min–max band over seeds, baselines, tooltip. */
  function linePlot(plot, figure) {
    const allX = plot.series.flatMap((s) => s.points.map((p) => p[0]));
    const time = plot.xUnit === "seconds" ? timeUnit(Math.max(0, ...allX)) : null;
    const factor = time ? time.factor : 1;
    const series = plot.series.map((s) => ({
      variant: s.variant,
      points: s.points.map(([x, mean, min, max, n]) => [x * factor, mean, min, max, n]),
    }));
    const legend = layoutLegend(legendItems(plot, series));
    const frame = frameFor(legend);
    const svg = newSvg(figure, plot, frame.bottom + MARGIN.bottom);
    drawLegend(svg, legend);

    const xs = series.flatMap((s) => s.points.map((p) => p[0]));
    const ys = [
      ...series.flatMap((s) => s.points.flatMap((p) => [p[2], p[3]])),
      ...plot.baselines.map((b) => b.value),
    ];
    const xt = xs.length > 0 ? xTicks(xs, plot.xUnit === "step") : null;
    const yt = ys.length > 0 ? yTicks(ys, plot.unit) : null;
    const sx = (v) => frame.left + ((v - xt.lo) / (xt.hi - xt.lo)) * (frame.right - frame.left);
    const sy = (v) => frame.bottom - ((v - yt.lo) / (yt.hi - yt.lo)) * (frame.bottom - frame.top);
    const xLabel = time ? `${plot.xLabel} (${time.name})` : plot.xLabel;
    if (xt && yt) {
      drawAxes(svg, frame, { ticks: xt, scale: sx }, { ticks: yt, scale: sy }, xLabel, plot.yLabel);
      drawBaselines(svg, frame, plot, sy);
    } else noData(svg, frame);

    for (const s of series) {
      const color = colorOf.get(s.variant);
      const g = svgEl(svg, "g", { "data-series": s.variant, "data-points": s.points.length });
      if (s.points.length === 0 || !xt) continue;
      if (s.points.some((p) => p[4] > 1)) {
        const upper = s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[3]).toFixed(1)}`);
        const lower = s.points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[2]).toFixed(1)}`).reverse();
        svgEl(g, "polygon", {
          class: "band",
          points: [...upper, ...lower].join(" "),
          fill: color,
          opacity: 0.18,
        });
      }
      const d = s.points.map((p, i) => `${i === 0 ? "M" : "L"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`);
      svgEl(g, "path", { class: "line", d: d.join(""), fill: "none", stroke: color, "stroke-width": 2 });
      if (plot.markers || s.points.length === 1)
        for (const p of s.points)
          svgEl(g, "circle", { cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 3.5, fill: color });
    }
    if (xt && yt) attachTooltip(figure, svg, frame, series, sx, time);
  }

  /** One value per variant: the mean with ± SE whiskers, the seeds' values as hollow dots. */
  function dotPlot(plot, figure) {
    const dots = new Map(plot.dots.map((d) => [d.variant, d]));
    const series = data.variants.map((v) => ({ variant: v.name, points: dots.has(v.name) ? [0] : [] }));
    const legend = layoutLegend(legendItems(plot, series));
    const frame = frameFor(legend);
    const svg = newSvg(figure, plot, frame.bottom + MARGIN.bottom);
    drawLegend(svg, legend);

    const ys = [
      ...plot.dots.flatMap((d) => [d.mean - (d.se ?? 0), d.mean + (d.se ?? 0), ...d.values]),
      ...plot.baselines.map((b) => b.value),
    ];
    const yt = ys.length > 0 ? yTicks(ys, plot.unit) : null;
    const sy = (v) => frame.bottom - ((v - yt.lo) / (yt.hi - yt.lo)) * (frame.bottom - frame.top);
    const band = (frame.right - frame.left) / Math.max(1, series.length);
    if (yt) {
      drawAxes(svg, frame, null, { ticks: yt, scale: sy }, "", plot.yLabel);
      drawBaselines(svg, frame, plot, sy);
    } else noData(svg, frame);

    series.forEach((s, i) => {
      const cx = frame.left + band * (i + 0.5);
      const color = colorOf.get(s.variant);
      svgText(svg, cx, frame.bottom + 18, s.variant, { "text-anchor": "middle", "font-size": 12.5 });
      const g = svgEl(svg, "g", { "data-series": s.variant, "data-points": s.points.length });
      const d = dots.get(s.variant);
      if (!d || !yt) return;
      if (d.se !== null) {
        const [y1, y2] = [sy(d.mean - d.se), sy(d.mean + d.se)];
        svgEl(g, "line", { x1: cx, x2: cx, y1, y2, stroke: color, "stroke-width": 2 });
        for (const y of [y1, y2])
          svgEl(g, "line", { x1: cx - 7, x2: cx + 7, y1: y, y2: y, stroke: color, "stroke-width": 2 });
      }
      d.values.forEach((v, j) => {
        const offset = 18 + 9 * j;
        svgEl(g, "circle", {
          cx: cx + offset,
          cy: sy(v),
          r: 3.5,
          fill: "white",
          stroke: color,
          "stroke-width": 1.5,
        });
      });
      svgEl(g, "circle", { cx, cy: sy(d.mean), r: 5.5, fill: color });
      const label = d.se === null ? d.mean.toFixed(3) : `${d.mean.toFixed(3)} ± ${d.se.toFixed(3)}`;
      const top = Math.min(sy(d.mean + (d.se ?? 0)), ...d.values.map(sy));
      svgText(g, cx, Math.max(frame.top + 10, top - 9), label, {
        "text-anchor": "middle",
        "font-size": 11.5,
      });
    });
  }

  /** On hover: a vertical rule at the nearest x and each variant's value there. */
  function attachTooltip(figure, svg, frame, series, sx, time) {
    const tip = document.createElement("div");
    tip.className = "tooltip";
    figure.appendChild(tip);
    const rule = svgEl(svg, "line", {
      y1: frame.top,
      y2: frame.bottom,
      stroke: MUTED,
      "stroke-dasharray": "2 2",
      visibility: "hidden",
    });
    const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))];
    const xText = (x) => (time ? `${valueFormat(x)} ${time.name}` : `step ${valueFormat(x)}`);
    const hide = () => {
      tip.style.display = "none";
      rule.setAttribute("visibility", "hidden");
    };
    svg.addEventListener("mouseleave", hide);
    svg.addEventListener("mousemove", (event) => {
      const ctm = svg.getScreenCTM();
      if (!ctm) return;
      const px = (event.clientX - ctm.e) / ctm.a;
      if (px < frame.left - 10 || px > frame.right + 10) return hide();
      const x0 = xs.reduce((best, x) => (Math.abs(sx(x) - px) < Math.abs(sx(best) - px) ? x : best));
      rule.setAttribute("x1", sx(x0));
      rule.setAttribute("x2", sx(x0));
      rule.setAttribute("visibility", "visible");
      tip.replaceChildren();
      const head = document.createElement("div");
      head.textContent = xText(x0);
      head.style.fontWeight = "600";
      tip.appendChild(head);
      for (const s of series) {
        if (s.points.length === 0) continue;
        const p = s.points.reduce((best, q) => (Math.abs(q[0] - x0) < Math.abs(best[0] - x0) ? q : best));
        if (Math.abs(sx(p[0]) - sx(x0)) > 30) continue;
        const row = document.createElement("div");
        const dot = document.createElement("span");
        dot.className = "swatch";
        dot.style.background = colorOf.get(s.variant);
        const spread = p[4] > 1 ? ` (${valueFormat(p[2])}–${valueFormat(p[3])}, ${p[4]} seeds)` : "";
        const where = p[0] !== x0 ? ` at ${xText(p[0])}` : "";
        row.append(dot, `${s.variant}: ${valueFormat(p[1])}${spread}${where}`);
        tip.appendChild(row);
      }
      tip.style.display = "block";
      const scale = svg.clientWidth / WIDTH;
      const left = svg.offsetLeft + sx(x0) * scale;
      const fitsRight = left + 14 + tip.offsetWidth < figure.clientWidth;
      tip.style.left = `${fitsRight ? left + 14 : left - 14 - tip.offsetWidth}px`;
      tip.style.top = `${svg.offsetTop + frame.top * scale}px`;
    });
  }

  // --- draw everything ----------------------------------------------------------------------------

  const kinds = { line: linePlot, dots: dotPlot };
  let drawn = 0;
  for (const plot of data.plots) {
    const figure = document.createElement("figure");
    figure.className = "plot";
    const caption = document.createElement("figcaption");
    caption.textContent = plot.title;
    figure.appendChild(caption);
    document.getElementById(`plots-${plot.group}`).appendChild(figure);
    kinds[plot.kind](plot, figure);
    drawn += 1;
  }
  document.body.dataset.plots = String(drawn);
  document.body.dataset.height = String(document.documentElement.scrollHeight);
})();
