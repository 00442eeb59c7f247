"""The demo shop: a customer's website with the chat widget embedded, served
by `threadline demo` on its own origin (the next port), so the widget runs
exactly as it would on a real site — cross-origin, in its iframe.

The page is what a shop owner would write: the queue stub and the script
tag from the README, a sign-up form whose backend (`POST /signup`, this
app) signs the new user's identity token with the widget inbox's secret
for `Threadline.setUser`, `Threadline.track('signed_up')`, the whole cart
in `Threadline.track('cart_updated', ...)` on every "Add to cart" and
`order_placed` on "Place order" (the shapes server.domain.touch_seeds
reads), `Threadline.open()` on a help link. Inline scripts are fine here:
this is the customer's page, not Threadline's.
"""

from __future__ import annotations

import hashlib
import html
import json
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from server.domain.widget_identity import identity_token

# How long a signed-up user's identity token is good for (the page asks
# for a new one on its next sign-up).
TOKEN_LIFETIME = timedelta(hours=12)
MAX_EMAIL = 320
MAX_NAME = 200

# (sku, name, price in cents, colour of the picture)
PRODUCTS = [
    ("trail-runner", "Trail Runner shoes", 8900, "#2563eb"),
    ("merino-socks", "Merino socks, 3 pairs", 1900, "#0f766e"),
    ("rain-shell", "Packable rain shell", 12900, "#b45309"),
    ("steel-bottle", "Steel water bottle", 2400, "#7c3aed"),
]

# The queue stub of the README: page code may call the API before the
# loader has arrived; the loader drains Threadline.q.
STUB = (
    "!function(w,n){if(w[n])return;var t=w[n]={q:[]};"
    '["open","close","toggle","setUser","setAttributes","track","setLocale","reset","on"]'
    ".forEach(function(m){t[m]=function(){t.q.push([m,[].slice.call(arguments)])}})}"
    '(window,"Threadline");'
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo Shop</title>
<link rel="icon" href="data:,">
<style>
  body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #1f2933; background: #f7f7f5; }
  header { display: flex; align-items: center; justify-content: space-between;
           padding: 14px 24px; background: #fff; border-bottom: 1px solid #e4e4e0; }
  header strong { font-size: 20px; }
  main { max-width: 960px; margin: 0 auto; padding: 24px; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 18px; }
  .product { background: #fff; border: 1px solid #e4e4e0; border-radius: 12px; padding: 14px; }
  .picture { height: 120px; border-radius: 8px; margin-bottom: 10px; }
  .product h2 { font-size: 16px; margin: 0; }
  .price { color: #52606d; margin: 2px 0 10px; }
  button { font: inherit; cursor: pointer; border-radius: 8px; padding: 8px 14px;
           border: 1px solid #1f2933; background: #1f2933; color: #fff; }
  button.link { background: none; color: #1f2933; }
  #events { font: 13px/1.4 ui-monospace, monospace; color: #52606d; white-space: pre-wrap; }
  .panel { background: #fff; border: 1px solid #e4e4e0; border-radius: 12px; padding: 14px;
           margin: 18px 0; }
  .panel input { font: inherit; padding: 6px 8px; border: 1px solid #c4c4c0; border-radius: 6px; }
  .panel label { margin-right: 10px; }
</style>
</head>
<body>
<header>
  <strong>Demo Shop</strong>
  <span>Cart: <span id="count">0</span> items, <span id="total">0.00</span> EUR</span>
</header>
<main>
  <p>A pretend shop on its own origin, with the Threadline chat widget embedded.
     <button type="button" class="link" id="help">Questions? Chat with us</button></p>
  <form class="panel" id="signup">
    <strong>Create an account</strong>
    <p>Sign up, put two things in the cart and leave: a welcome and a cart reminder reach
       the demo's mail sink within a minute.</p>
    <label>Name <input id="signup-name" name="name" autocomplete="name" required></label>
    <label>Email <input id="signup-email" name="email" type="email" autocomplete="email" required></label>
    <button type="submit">Sign up</button>
    <span id="account" role="status"></span>
  </form>
  <div class="grid">__PRODUCTS__</div>
  <div class="panel">
    <strong>Your cart</strong>
    <ul id="cart-items"></ul>
    <button type="button" id="order">Place order</button>
    <span id="ordered" role="status"></span>
  </div>
  <h3>What this page hears from the widget</h3>
  <p id="events">Only that a message arrived, never what it says.</p>
</main>
<script>__STUB__</script>
<script async src="__LOADER__" data-inbox="__TOKEN__"></script>
<script>
  (function () {
    var products = __CATALOGUE__;
    var cart = {};
    function newId(prefix) { return prefix + "-" + Math.random().toString(36).slice(2, 10); }
    var cartId = newId("cart");
    function show(line) {
      var el = document.getElementById("events");
      el.textContent = (line + "\\n" + el.textContent).split("\\n").slice(0, 6).join("\\n");
    }
    function here() { return location.href.split("#")[0]; }
    // The cart as the touchpoints' templates read it: the items with
    // name, price (in euros), quantity and link, the total and currency.
    function currentCart() {
      var items = Object.keys(cart).map(function (sku) {
        return { product_id: sku, name: products[sku].name, price: products[sku].price / 100,
                 quantity: cart[sku], url: here() + "#" + sku };
      });
      var total = Object.keys(cart).reduce(function (n, k) { return n + cart[k] * products[k].price; }, 0) / 100;
      var count = Object.keys(cart).reduce(function (n, k) { return n + cart[k]; }, 0);
      return { cart_id: cartId, items: items, total: total, currency: "EUR", url: here(), item_count: count };
    }
    function render() {
      var c = currentCart();
      document.getElementById("count").textContent = c.item_count;
      document.getElementById("total").textContent = c.total.toFixed(2);
      var list = document.getElementById("cart-items");
      list.textContent = "";
      c.items.forEach(function (item) {
        var li = document.createElement("li");
        li.textContent = item.name + " x " + item.quantity;
        list.appendChild(li);
      });
      document.getElementById("order").disabled = c.items.length === 0;
    }
    document.getElementById("help").addEventListener("click", function () { Threadline.open(); });
    document.getElementById("signup").addEventListener("submit", function (e) {
      e.preventDefault();
      var name = document.getElementById("signup-name").value;
      var email = document.getElementById("signup-email").value;
      var status = document.getElementById("account");
      // The shop's backend signs who signed up (a real shop: after it
      // created the account), so Threadline may trust the email address.
      fetch("/signup", { method: "POST", headers: { "Content-Type": "application/json" },
                        body: JSON.stringify({ name: name, email: email }) })
        .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
        .then(function (r) {
          if (!r.ok) { status.textContent = r.body.error || "Sign-up failed"; return; }
          Threadline.setUser(r.body.user_id, { name: name, email: email, identityToken: r.body.identity_token });
          Threadline.track("signed_up", { method: "email" });
          status.textContent = "Signed up as " + email;
          show("signed up " + email);
        }, function () { status.textContent = "Sign-up failed"; });
    });
    document.querySelectorAll("[data-sku]").forEach(function (button) {
      button.addEventListener("click", function () {
        var sku = button.getAttribute("data-sku");
        cart[sku] = (cart[sku] || 0) + 1;
        render();
        document.getElementById("ordered").textContent = "";
        Threadline.track("cart_updated", currentCart());
        show("cart_updated " + cartId);
      });
    });
    document.getElementById("order").addEventListener("click", function () {
      var c = currentCart();
      if (!c.items.length) return;
      var orderId = newId("order");
      Threadline.track("order_placed", { order_id: orderId, cart_id: c.cart_id, items: c.items,
                                         total: c.total, currency: c.currency });
      show("order_placed " + orderId);
      document.getElementById("ordered").textContent = "Order " + orderId + " placed";
      cart = {};
      cartId = newId("cart");
      render();
    });
    render();
    Threadline.on("ready", function () { show("ready"); });
    Threadline.on("message", function (m) { show("message " + JSON.stringify(m)); });
  })();
</script>
</body>
</html>
"""


def _product(sku: str, name: str, cents: int, colour: str) -> str:
    return (
        '<div class="product">'
        f'<div class="picture" style="background: linear-gradient(135deg, {colour}, #e4e4e0)"></div>'
        f"<h2>{html.escape(name)}</h2>"
        f'<p class="price">{cents / 100:.2f} EUR</p>'
        f'<button type="button" data-sku="{html.escape(sku)}">Add to cart</button>'
        "</div>"
    )


def shop_page(threadline_url: str, inbox_token: str) -> str:
    """The shop's HTML, embedding the widget of `inbox_token` served by the
    Threadline server at `threadline_url`."""
    catalogue = {sku: {"name": name, "price": cents} for sku, name, cents, _ in PRODUCTS}
    # "</" can't end the inline script early: JSON escapes it.
    catalogue_js = json.dumps(catalogue).replace("</", "<\\/")
    return (
        PAGE.replace("__PRODUCTS__", "".join(_product(*p) for p in PRODUCTS))
        .replace("__STUB__", STUB)
        .replace("__LOADER__", html.escape(threadline_url.rstrip("/") + "/widget/loader.js"))
        .replace("__TOKEN__", html.escape(inbox_token))
        .replace("__CATALOGUE__", catalogue_js)
    )


def _error(field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": f"{field}: {message}", "field": field}, status_code=400)


def shop_user_id(email: str) -> str:
    """The shop's own id for the user of `email` (the same on every sign-up)."""
    return "shop-user-" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def shop_app(
    threadline_url: str, inbox_token: str, identity_secret: str | None = None
) -> Starlette:
    """The demo shop as an ASGI app: the page at `/` and, when it knows the
    widget inbox's `identity_secret`, its backend's `POST /signup`
    ({name, email} -> {user_id, identity_token}), which signs the user's
    identity token as a real shop's backend would."""
    page = shop_page(threadline_url, inbox_token)

    async def home(request: Request) -> Response:
        return HTMLResponse(page)

    async def signup(request: Request) -> Response:
        if identity_secret is None:
            return JSONResponse(
                {"error": "this shop has no identity secret to sign with"}, status_code=503
            )
        try:
            body = await request.json()
        except ValueError:
            return _error("body", "must be a JSON object")
        if not isinstance(body, dict):
            return _error("body", "must be a JSON object")
        email, name = body.get("email"), body.get("name")
        if not isinstance(email, str) or "@" not in email.strip() or len(email) > MAX_EMAIL:
            return _error("email", "must be an email address")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
            return _error("name", f"must be text of at most {MAX_NAME} characters")
        email = email.strip()
        user_id = shop_user_id(email)
        token = identity_token(identity_secret, user_id, email, datetime.now(UTC) + TOKEN_LIFETIME)
        return JSONResponse({"user_id": user_id, "identity_token": token})

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/signup", signup, methods=["POST"]),
        ]
    )
