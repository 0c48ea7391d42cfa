// Accessibility checks run on each dashboard page by tests/test_dashboard_browser.py: every form
// field and button has a name a screen reader reads, no link is empty, text contrast passes WCAG AA
// against its background, one h1 and a main landmark. Returns the problems found.
() => {
  const problems = [];
  const lum = (c) => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                       return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const rgba = (s) => (s.match(/[\d.]+/g) || []).map(Number);
  const background = (el) => { for (; el; el = el.parentElement) { const c = rgba(getComputedStyle(el).backgroundColor);
                                 if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3); } return [255, 255, 255]; };
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea, button")) {
    const named = (el.labels && el.labels.length) || el.getAttribute("aria-label") || (el.tagName === "BUTTON" && el.textContent.trim());
    if (!named) problems.push("no name: " + el.outerHTML.slice(0, 80));
  }
  for (const a of document.querySelectorAll("a[href]")) if (!a.textContent.trim() && !a.getAttribute("aria-label")) problems.push("empty link: " + a.outerHTML.slice(0, 80));
  for (const el of document.querySelectorAll("body *")) {
    if (!el.offsetParent || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    if (el.closest(".skip, .visually-hidden")) continue;
    const fg = lum(rgba(style.color).slice(0, 3)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && +style.fontWeight >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}: ${el.tagName} ${el.textContent.trim().slice(0, 40)}`);
  }
  if (document.querySelectorAll("h1").length !== 1) problems.push("not one h1");
  if (!document.querySelector("main")) problems.push("no main landmark");
  return problems;
}
