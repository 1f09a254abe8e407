"""`/`: the sign-in page. The browser posts the form to /console/login itself (fetch, JSON), so
the password goes straight to the same check the API runs and the cookie comes back HttpOnly."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import ui

from cloud.console.i18n import LOCALES, Texts, pick
from cloud.console.mount import parent_app
from cloud.console.viewer import viewer_of

FORM = """
<form id="login" class="column q-gutter-md" style="width: 320px" autocomplete="on">
  <input name="username" autocomplete="username" maxlength="64" required placeholder="{user}"
         class="q-pa-sm" style="border:1px solid #bbb;border-radius:4px">
  <input name="password" type="password" autocomplete="current-password" maxlength="1024"
         required placeholder="{password}" class="q-pa-sm"
         style="border:1px solid #bbb;border-radius:4px">
  <button type="submit" class="q-btn bg-teal-8 text-white q-pa-sm"
          style="border:0;border-radius:4px">{submit}</button>
  <div id="login-error" class="text-negative"></div>
</form>
"""
SCRIPT = """
<script>
document.addEventListener('submit', async (event) => {
  if (event.target.id !== 'login') return;
  event.preventDefault();
  const form = new FormData(event.target);
  const answer = await fetch('/console/login', {
    method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({username: form.get('username'), password: form.get('password')}),
  });
  if (answer.ok) { window.location.href = '/board'; return; }
  const messages = %s;
  document.getElementById('login-error').textContent =
    messages[answer.status] || messages.other;
});
</script>
"""


@ui.page("/")
def login_page(request: Request, lang: str = "") -> RedirectResponse | None:
    viewer = viewer_of(request, parent_app())
    if viewer is not None and not viewer.me.is_tenant:
        return RedirectResponse("/board", status_code=303)
    texts = Texts(locale=pick(lang), tz=ZoneInfo(parent_app().state.settings.timezone))
    _ = texts.gettext
    ui.page_title(_("Sign in") + " · 安居 Anju")
    messages = {
        401: _("Wrong username or password."),
        403: _("The console is for staff; tenants use the tenant portal."),
        429: _("Too many attempts; wait a moment and retry."),
        "other": _("Sign-in failed; retry."),
    }
    ui.add_body_html(SCRIPT % json.dumps(messages, ensure_ascii=False))
    with ui.column().classes("absolute-center items-center q-gutter-md"):
        ui.label("安居 Anju").classes("text-h4 text-teal-9")
        ui.label(_("Property management console")).classes("text-subtitle1")
        ui.html(
            FORM.format(user=_("Username"), password=_("Password"), submit=_("Sign in")),
            sanitize=False,
        )
        with ui.row():
            for code, name in LOCALES.items():
                ui.link(name, f"/?lang={code}").classes("q-mx-sm")
    return None
