// What-if: placeholder until the API's job routes exist.
import { $, clear, h } from "./dom.js";

export function start() {
  clear($("#what-if"), h("p", { class: "empty" }, "This worker offers no what-if API."));
}
