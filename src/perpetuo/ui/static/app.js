// Perpetuo dashboard: small enhancements. Every page works without this file.
"use strict";

document.documentElement.classList.add("js");

// On a phone the section list folds into a menu: its button opens and closes it.
function setNavOpen(nav, open) {
  nav.classList.toggle("open", open);
  nav.querySelector(".nav-toggle").setAttribute("aria-expanded", String(open));
}
document.addEventListener("click", (event) => {
  const toggle = event.target.closest(".nav-toggle");
  if (toggle) setNavOpen(toggle.closest(".sidenav"), !toggle.closest(".sidenav").classList.contains("open"));
});

// Copy buttons: <button data-copy="element-id">.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = (source.value !== undefined ? source.value : source.textContent).trim();
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch (error) {
    // No clipboard access (e.g. plain http on another host): select the text instead.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Press Ctrl+C";
  }
  setTimeout(() => { button.textContent = label; }, 2000);
});

// Forms: ask before destructive actions; show that a submitted form is working.
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  const button = event.submitter;
  if (button && form.hasAttribute("data-busy")) {
    // After the submit is under way, so the button's own name and value are still sent.
    setTimeout(() => {
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
    }, 0);
  }
});

// Selects that act at once (a member's role): submit their form on change.
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form) {
    if (typeof select.form.requestSubmit === "function") select.form.requestSubmit();
    else select.form.submit();
  }
});

// Close an open menu with Escape, or by clicking elsewhere.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll("details.menu[open]").forEach((menu) => {
    menu.removeAttribute("open");
    menu.querySelector("summary").focus();
  });
  document.querySelectorAll(".sidenav.open").forEach((nav) => {
    setNavOpen(nav, false);
    nav.querySelector(".nav-toggle").focus();
  });
});
document.addEventListener("click", (event) => {
  document.querySelectorAll("details.menu[open]").forEach((menu) => {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  });
});
