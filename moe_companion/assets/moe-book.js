/* Search result snippets without raw TeX: Sphinx builds each snippet from the page's HTML, where the maths is
 * still TeX source (MathJax typesets it in the browser). Display maths is dropped from the snippet text and
 * inline maths is turned into a plain-text approximation (\sigma^2 -> σ^2). */
(function () {
  "use strict";
  const GREEK = { alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", eta: "η",
    theta: "θ", kappa: "κ", lambda: "λ", mu: "μ", nu: "ν", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ",
    chi: "χ", psi: "ψ", omega: "ω", Sigma: "Σ", Delta: "Δ", Gamma: "Γ", Lambda: "Λ", Omega: "Ω", top: "ᵀ",
    le: "≤", leq: "≤", ge: "≥", geq: "≥", approx: "≈", infty: "∞", cdot: "·", times: "×", to: "→", in: "∈" };
  function plainTeX(tex) {
    return tex.replace(/^\\\(|\\\)$/g, "")
      .replace(/\\(?:mathcal|mathbb|mathrm|text|operatorname|bar|hat|tilde|boldsymbol|mathbf)\s*\{([^{}]*)\}/g, "$1")
      .replace(/\\([A-Za-z]+)/g, (m, name) => GREEK[name] || "")
      .replace(/[{}]/g, "").replace(/\s+/g, " ").trim();
  }
  function patch() {
    // searchtools.js declares `const Search` at top level: a global binding, not a property of window
    if (typeof Search === "undefined" || !Search.htmlToText || Search.__moePlain) return;
    const original = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      doc.querySelectorAll("div.math").forEach(el => el.remove());
      doc.querySelectorAll("span.math").forEach(el => { el.textContent = plainTeX(el.textContent); });
      return original.call(this, doc.documentElement.outerHTML, anchor);
    };
    Search.__moePlain = true;
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", patch); else patch();
})();
