// Playground: send the conversation in the chosen API (Chat Completions, Responses or
// Messages), read that API's server-sent events as they arrive, and show each reply with the
// API it came in, how it was routed, its tokens and its cost.
"use strict";

(() => {
  const form = document.getElementById("playground");
  if (!form) return;
  const log = document.getElementById("chat-log");
  const input = document.getElementById("message");
  const send = document.getElementById("send");
  const stop = document.getElementById("stop");
  const errorBox = document.getElementById("chat-error");
  const decision = document.getElementById("decision");
  const history = [];
  let controller = null;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function addMessage(role, text) {
    const empty = document.getElementById("chat-empty");
    if (empty) empty.remove();
    const node = element("div", `msg msg-${role}`);
    node.dataset.role = role;
    const body = element("span", "msg-body", text);
    node.appendChild(body);
    log.appendChild(node);
    log.scrollTop = log.scrollHeight;
    return node;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function money(value) {
    if (!value) return "$0";
    return value >= 0.01 ? `$${value.toFixed(4)}` : `$${value.toFixed(6)}`;
  }

  // The text an event of each API adds to the reply; an error event throws.
  const TEXT_OF = {
    chat(name, event) {
      if (event.error) throw new Error(event.error.message || "The stream failed.");
      return (event.choices || []).map((c) => (c.delta && c.delta.content) || "").join("");
    },
    responses(name, event) {
      if (name === "error" || name === "response.failed") {
        const error = event.message ? event : (event.response && event.response.error) || {};
        throw new Error(error.message || "The stream failed.");
      }
      return name === "response.output_text.delta" ? event.delta || "" : "";
    },
    messages(name, event) {
      if (name === "error") throw new Error((event.error && event.error.message) || "The stream failed.");
      const delta = name === "content_block_delta" ? event.delta || {} : {};
      return delta.type === "text_delta" ? delta.text || "" : "";
    },
  };

  function apiLabel(summary) {
    return summary.lane ? `${summary.api} (${summary.lane})` : summary.api;
  }

  function describe(summary) {
    const parts = [
      apiLabel(summary),
      `${summary.provider || "?"} · ${summary.model || "?"}`,
      `${summary.attempts} attempt${summary.attempts === 1 ? "" : "s"}`,
      summary.fallback ? "fallback used" : "no fallback",
      `${summary.prompt_tokens} + ${summary.completion_tokens} tokens${summary.usage_estimated ? " (estimated)" : ""}`,
      money(summary.cost_usd),
      `${Math.round(summary.latency_ms)} ms`,
    ];
    return parts.join(" · ");
  }

  function showDecision(summary) {
    decision.replaceChildren();
    const facts = element("dl", "facts");
    const rows = [
      ["API", apiLabel(summary)],
      ["Alias", summary.alias],
      ["Served by", `${summary.provider} / ${summary.model}`],
      ["Strategy", summary.strategy],
      ["Attempts", String(summary.attempts)],
      ["Fallback", summary.fallback ? "yes" : "no"],
      ["Tokens", `${summary.prompt_tokens} prompt, ${summary.completion_tokens} completion`],
      ["Cost", money(summary.cost_usd)],
      ["Latency", `${Math.round(summary.latency_ms)} ms${summary.ttft_ms ? ` (first token ${Math.round(summary.ttft_ms)} ms)` : ""}`],
    ];
    for (const [name, value] of rows) {
      facts.appendChild(element("dt", "", name));
      facts.appendChild(element("dd", "", value));
    }
    decision.appendChild(facts);
    const attempts = (summary.trace && summary.trace.attempts) || [];
    if (attempts.length > 1) {
      const list = element("ol", "small");
      for (const attempt of attempts) {
        const outcome = attempt.error ? `failed: ${attempt.error}` : `status ${attempt.status}`;
        list.appendChild(element("li", "", `${attempt.deployment} — ${outcome}`));
      }
      decision.appendChild(list);
    }
    const link = element("a", "", "Open the request log entry →");
    link.href = summary.log_url;
    decision.appendChild(link);
  }

  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        }
        if (data.length) onEvent(name, data.join("\n"));
      }
    }
  }

  function setBusy(busy) {
    send.disabled = busy;
    send.setAttribute("aria-busy", busy ? "true" : "false");
    send.replaceChildren(busy ? element("span", "spinner") : document.createTextNode("Send"));
    if (busy) send.appendChild(document.createTextNode(" Streaming…"));
    stop.classList.toggle("hidden", !busy);
  }

  async function submit() {
    const text = input.value.trim();
    if (!text || controller) return;
    showError("");
    history.push({ role: "user", content: text });
    addMessage("user", text);
    input.value = "";
    const reply = addMessage("assistant", "");
    const body = reply.querySelector(".msg-body");
    reply.classList.add("streaming");
    const api = form.elements.api.value;
    const textOf = TEXT_OF[api] || TEXT_OF.chat;
    const payload = {
      key_id: form.elements.key_id.value,
      model: form.elements.model.value,
      api,
      system: form.elements.system.value.trim(),
      messages: history.slice(),
      temperature: form.elements.temperature.value === "" ? null : Number(form.elements.temperature.value),
      max_tokens: form.elements.max_tokens.value === "" ? null : Number(form.elements.max_tokens.value),
    };
    controller = new AbortController();
    setBusy(true);
    let answer = "";
    try {
      const response = await fetch(form.dataset.endpoint, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "accept": "text/event-stream, application/json",
          "x-csrf-token": form.dataset.csrf,
        },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
      if (!response.ok) {
        let message = `The request was refused (${response.status}).`;
        try {
          const data = await response.json();
          if (data.error && data.error.message) message = data.error.message;
        } catch (ignored) { /* not JSON */ }
        throw new Error(message);
      }
      await readEvents(response, (name, data) => {
        if (data === "[DONE]") return;
        const event = JSON.parse(data);
        if (name === "perpetuo") {
          const meta = element("span", "msg-meta", describe(event));
          meta.dataset.test = "reply-meta";
          reply.appendChild(meta);
          showDecision(event);
          return;
        }
        const piece = textOf(name, event);
        if (piece) {
          answer += piece;
          body.textContent = answer;
          log.scrollTop = log.scrollHeight;
        }
      });
      history.push({ role: "assistant", content: answer });
    } catch (error) {
      if (error.name === "AbortError") {
        reply.appendChild(element("span", "msg-meta", "Stopped."));
      } else {
        if (!answer) reply.remove();
        history.pop();
        addMessage("error", error.message);
        showError(error.message);
      }
    } finally {
      reply.classList.remove("streaming");
      controller = null;
      setBusy(false);
      input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  stop.addEventListener("click", () => controller && controller.abort());
  document.getElementById("clear-chat").addEventListener("click", () => {
    history.length = 0;
    const empty = element("p", "muted small", "Send a message to start.");
    empty.id = "chat-empty";
    log.replaceChildren(empty);
    decision.replaceChildren(element("p", "muted", "None yet."));
    showError("");
  });
})();
