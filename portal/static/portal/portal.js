// Lightsout portal: small progressive enhancements. Every page works without them except live updates,
// the copy button, card entry (Stripe.js) and the streamed playground.
(function () {
  "use strict";

  function csrfToken() {
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  window.lightsout = { csrfToken: csrfToken };

  // <div data-poll="/url" data-poll-ms="1500">: re-fetch the fragment and swap it in until the server answers
  // with a fragment that no longer polls (the job finished), so a finished page stops asking.
  function poll(element) {
    const ms = parseInt(element.dataset.pollMs || "1500", 10);
    const timer = setTimeout(async function () {
      if (!document.body.contains(element)) return;
      try {
        const response = await fetch(element.dataset.poll, { headers: { "X-Fragment": "1" }, credentials: "same-origin" });
        if (!response.ok) { poll(element); return; }
        const holder = document.createElement("div");
        holder.innerHTML = await response.text();
        const next = holder.firstElementChild;
        element.replaceWith(next);
        if (next && next.dataset.poll) poll(next);
      } catch (error) { poll(element); }
    }, ms);
    element.addEventListener("lightsout:stop", function () { clearTimeout(timer); });
  }

  function copy(button) {
    button.addEventListener("click", async function () {
      const target = document.getElementById(button.dataset.copyTarget);
      await navigator.clipboard.writeText(target.textContent.trim()).catch(function () {});
      const label = button.textContent;
      button.textContent = button.dataset.copiedLabel || "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  }

  // Card collection through Stripe.js (in local runs, localstripe's stand-in): the card goes to Stripe, our
  // server only ever sees the SetupIntent id.
  function stripeCard(form) {
    const stripe = window.Stripe(form.dataset.publishableKey);
    const card = stripe.elements().create("card");
    card.mount(form.querySelector("[data-card-element]"));
    const errors = form.querySelector("[data-card-errors]");
    form.addEventListener("submit", async function (event) {
      if (form.elements.setup_intent.value) return;
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      const result = await stripe.confirmCardSetup(form.dataset.clientSecret, { payment_method: { card: card } });
      if (result.error) {
        errors.textContent = result.error.message || String(result.error);
        button.disabled = false;
        return;
      }
      form.elements.setup_intent.value = result.setupIntent.id;
      form.submit();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(poll);
    document.querySelectorAll("[data-copy-target]").forEach(copy);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    document.querySelectorAll("select[data-navigate]").forEach(function (select) {
      select.addEventListener("change", function () { window.location.href = select.value; });
    });
    document.querySelectorAll("form[data-stripe-card]").forEach(stripeCard);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });
})();

// ---- Playground (portal/views/models.py) ------------------------------------------------------------------------
// <form data-playground="stream URL">: the answer is read from the gateway's server-sent events as they arrive
// (fetch + ReadableStream) and written into #playground-output token by token. `event: error` carries a readable
// message (quota, no capacity, ...). The conversation so far is sent back as `history`. Without JavaScript the form
// posts to the page and the answer comes back whole.
(function () {
  "use strict";

  function playground(form) {
    const output = document.getElementById("playground-output");
    const transcript = document.getElementById("playground-transcript");
    const question = document.getElementById("playground-question");
    const status = document.getElementById("playground-status");
    const error = document.getElementById("playground-error");
    const reset = form.querySelector("[data-playground-reset]");
    const button = form.querySelector("button[type=submit]");
    let history = [];
    let lastTurn = null;

    function showError(message) {
      error.textContent = message;
      error.hidden = false;
    }

    function addToTranscript(who, text) {
      const item = document.createElement("li");
      const label = document.createElement("strong");
      label.textContent = who + ": ";
      item.appendChild(label);
      item.appendChild(document.createTextNode(text));
      transcript.appendChild(item);
    }

    async function errorOf(response) {
      try {
        const body = await response.json();
        if (body && body.error && body.error.message) return body.error.message;
      } catch (ignored) { /* not JSON: an HTML refusal page */ }
      return form.dataset.networkError + " (HTTP " + response.status + ")";
    }

    // One SSE block ("event: x\ndata: y"): returns the text to append, or throws the error message it carries.
    function handleBlock(block, state) {
      let event = "message";
      const data = [];
      block.split("\n").forEach(function (line) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      });
      if (!data.length) return "";
      const payload = data.join("\n");
      if (event === "error") {
        let message = payload;
        try { message = JSON.parse(payload).message || payload; } catch (ignored) { /* plain text */ }
        throw new Error(message);
      }
      if (payload === "[DONE]") { state.done = true; return ""; }
      const chunk = JSON.parse(payload);
      if (chunk.error) throw new Error(chunk.error.message || String(chunk.error));
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.finish_reason) state.done = true;
      return (choice && choice.delta && choice.delta.content) || "";
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const data = new FormData(form);
      const asked = String(data.get("message") || "").trim();
      if (!asked) { form.elements.message.focus(); return; }
      if (lastTurn) {
        addToTranscript(form.dataset.youLabel, lastTurn.question);
        addToTranscript(form.dataset.modelLabel, lastTurn.answer);
        lastTurn = null;
      }
      data.set("history", JSON.stringify(history));
      error.hidden = true;
      output.textContent = "";
      output.setAttribute("aria-busy", "true");
      question.querySelector("span").textContent = asked;
      question.hidden = false;
      status.textContent = form.dataset.waitingLabel;
      button.disabled = true;
      let answer = "";
      const state = { done: false };
      try {
        const response = await fetch(form.dataset.playground, {
          method: "POST", body: data, credentials: "same-origin",
          headers: { "X-CSRFToken": window.lightsout.csrfToken(), "Accept": "text/event-stream" },
        });
        if (!response.ok || !response.body) throw new Error(await errorOf(response));
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const text = handleBlock(buffer.slice(0, cut), state);
            buffer = buffer.slice(cut + 2);
            if (text) {
              if (!answer) status.textContent = form.dataset.writingLabel;
              answer += text;
              output.textContent = answer;
            }
          }
        }
        if (buffer.trim()) answer += handleBlock(buffer, state);
        output.textContent = answer;
        if (!state.done) throw new Error(form.dataset.cutOffLabel);
        status.textContent = form.dataset.doneLabel;
        history = history.concat([{ role: "user", content: asked }, { role: "assistant", content: answer }]);
        lastTurn = { question: asked, answer: answer };
        form.elements.message.value = "";
        if (reset) reset.hidden = false;
      } catch (failure) {
        status.textContent = "";
        showError(failure && failure.message ? failure.message : form.dataset.networkError);
      } finally {
        output.setAttribute("aria-busy", "false");
        button.disabled = false;
      }
    });

    if (reset) {
      reset.addEventListener("click", function () {
        history = [];
        lastTurn = null;
        transcript.textContent = "";
        output.textContent = "";
        question.hidden = true;
        error.hidden = true;
        status.textContent = "";
        reset.hidden = true;
        form.elements.message.focus();
      });
    }
  }

  // The job page's cancel button sits outside the polled fragment (so that polling never takes the focus from
  // it); once the fragment says the job finished, the button goes.
  function followJob(form) {
    const observer = new MutationObserver(function () {
      const live = document.getElementById("job-live");
      if (live && !live.dataset.poll) { form.remove(); observer.disconnect(); }
    });
    observer.observe(document.getElementById("main") || document.body, { childList: true, subtree: true });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-playground]").forEach(playground);
    document.querySelectorAll("form[data-cancel-job]").forEach(followJob);
  });
})();

// ---- Copilot (portal/views/copilot.py) ----------------------------------------------------------------------------
// <form data-copilot="stream URL">: the copilot's server-sent events (conversation, message, tool, facts, token...,
// prose_replaced, citations, proposal or refusal, done) are shown as they arrive; on `done` the page reloads the
// conversation, which renders the facts, citations and any proposal with its confirm button. Without JavaScript
// the form posts to the page.
(function () {
  "use strict";

  function copilot(form) {
    const transcript = document.getElementById("copilot-transcript");
    const status = document.getElementById("copilot-status");
    const error = document.getElementById("copilot-error");
    const button = form.querySelector("button[type=submit]");

    function turn(who, text) {
      const item = document.createElement("li");
      const label = document.createElement("strong");
      label.textContent = who + ": ";
      const prose = document.createElement("span");
      prose.className = "prose";
      prose.textContent = text;
      item.appendChild(label);
      item.appendChild(prose);
      transcript.appendChild(item);
      return item;
    }

    function parse(block) {
      let event = "message";
      const data = [];
      block.split("\n").forEach(function (line) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      });
      return { event: event, data: data.length ? JSON.parse(data.join("\n")) : {} };
    }

    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const data = new FormData(form);
      const asked = String(data.get("question") || "").trim();
      if (!asked) { form.elements.question.focus(); return; }
      error.hidden = true;
      button.disabled = true;
      status.textContent = form.dataset.thinkingLabel;
      turn(form.dataset.youLabel, asked);
      const answer = turn(form.dataset.copilotLabel, "");
      const prose = answer.querySelector(".prose");
      const details = document.createElement("ul");
      answer.appendChild(details);
      let conversation = data.get("conversation");
      let finished = false;
      try {
        const response = await fetch(form.dataset.copilot, {
          method: "POST", body: data, credentials: "same-origin",
          headers: { "X-CSRFToken": window.lightsout.csrfToken(), "Accept": "text/event-stream" },
        });
        if (!response.ok || !response.body) throw new Error(form.dataset.networkError + " (HTTP " + response.status + ")");
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const item = parse(buffer.slice(0, cut));
            buffer = buffer.slice(cut + 2);
            if (item.event === "conversation") conversation = item.data.id;
            else if (item.event === "token") prose.textContent += item.data.text;
            else if (item.event === "prose_replaced") prose.textContent = item.data.text;
            else if (item.event === "refusal") prose.textContent = item.data.reason;
            else if (item.event === "proposal") prose.textContent = item.data.summary;
            else if (item.event === "facts") {
              item.data.facts.forEach(function (fact) {
                const li = document.createElement("li");
                li.textContent = fact.name + ": " + fact.value + (fact.unit ? " " + fact.unit : "");
                details.appendChild(li);
              });
            } else if (item.event === "error") throw new Error(item.data.error ? item.data.error.message : form.dataset.networkError);
            else if (item.event === "done") finished = true;
          }
        }
        if (!finished) throw new Error(form.dataset.networkError);
        status.textContent = form.dataset.doneLabel;
        window.location.assign(form.dataset.page + "?c=" + encodeURIComponent(conversation));
      } catch (failure) {
        status.textContent = "";
        error.textContent = failure && failure.message ? failure.message : form.dataset.networkError;
        error.hidden = false;
      } finally {
        button.disabled = false;
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-copilot]").forEach(copilot);
  });
})();
