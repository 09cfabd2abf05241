// Search result snippets from the page's text only: Sphinx takes the text of [role="main"], which in
// sphinx-book-theme also holds the article header (download menu ".ipynb .pdf", buttons) and the
// in-page "Contents" list, so every snippet started with "....pdf". Drop those before extracting.
(function () {
  const NOISE = [".bd-header-article", ".header-article-items", ".bd-sidebar-secondary", ".prev-next-area"];
  function patch() {
    if (typeof Search === "undefined" || !Search.htmlToText || Search.htmlToText.coursePatched) return;
    const original = Search.htmlToText;
    Search.htmlToText = function (htmlString, anchor) {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      NOISE.forEach((q) => doc.querySelectorAll(q).forEach((el) => el.remove()));
      return original.call(this, doc.documentElement.outerHTML, anchor);
    };
    Search.htmlToText.coursePatched = true;
  }
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
