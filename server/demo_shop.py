"""The demo shop: a customer's website with the chat widget embedded, served
by `threadline demo` on its own origin (the next port), so the widget runs
exactly as it would on a real site — cross-origin, in its iframe.

The page is what a shop owner would write: the queue stub and the script
tag from the README, `Threadline.track('cart_updated', ...)` on its
"Add to cart" buttons, `Threadline.open()` on a help link. Inline scripts
are fine here: this is the customer's page, not Threadline's.
"""

from __future__ import annotations

import html
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

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
  <div class="grid">__PRODUCTS__</div>
  <h3>What this page hears from the widget</h3>
  <p id="events">Only that a message arrived, never what it says.</p>
</main>
<script>__STUB__</script>
<script async src="__LOADER__" data-inbox="__TOKEN__"></script>
<script>
  (function () {
    var products = __CATALOGUE__;
    var cart = {};
    function show(line) {
      var el = document.getElementById("events");
      el.textContent = (line + "\\n" + el.textContent).split("\\n").slice(0, 6).join("\\n");
    }
    document.getElementById("help").addEventListener("click", function () { Threadline.open(); });
    document.querySelectorAll("[data-sku]").forEach(function (button) {
      button.addEventListener("click", function () {
        var sku = button.getAttribute("data-sku");
        cart[sku] = (cart[sku] || 0) + 1;
        var skus = Object.keys(cart);
        var count = skus.reduce(function (n, k) { return n + cart[k]; }, 0);
        var total = skus.reduce(function (n, k) { return n + cart[k] * products[k].price; }, 0) / 100;
        document.getElementById("count").textContent = count;
        document.getElementById("total").textContent = total.toFixed(2);
        // Event properties are flat: strings, numbers, booleans.
        Threadline.track("cart_updated", {
          added: sku, added_name: products[sku].name, skus: skus.join(","),
          item_count: count, total: total, currency: "EUR"
        });
      });
    });
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


def shop_app(threadline_url: str, inbox_token: str) -> Starlette:
    """The demo shop as an ASGI app: one page at `/`."""
    page = shop_page(threadline_url, inbox_token)

    async def home(request: Request) -> Response:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", home, methods=["GET"])])
