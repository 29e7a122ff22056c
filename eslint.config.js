// ESLint for classhub's browser JavaScript (make lint): the shared script of every page
// (common/web/static/*.js), the services' pages (services/*/static/*.js), the scripts
// inline in the hub's templates (hub/templates, read by eslint-plugin-html) and the
// JupyterLab extension's sources (images/labextension/src, ES modules its build bundles).
// The pages' scripts are plain scripts for the browser: no modules, no build step.
// Style is Prettier's business (make format); these rules catch bugs.
"use strict";

const js = require("@eslint/js");
const html = require("eslint-plugin-html");
const globals = require("globals");

// The pages put data from the APIs into the DOM with textContent and attributes only,
// never as HTML (see the head of each script); these would break that rule.
const NO_HTML_SINKS = [
  {
    selector:
      "AssignmentExpression > MemberExpression.left[property.name=/^(innerHTML|outerHTML)$/]",
    message:
      "Put text in with textContent (or build elements); data from an API never goes in as HTML.",
  },
  {
    selector: "CallExpression[callee.property.name=/^(insertAdjacentHTML|write|writeln)$/]",
    message: "Build elements and set textContent; data from an API never goes in as HTML.",
  },
  {
    selector: "CallExpression[callee.property.name='createContextualFragment']",
    message: "Build elements and set textContent; data from an API never goes in as HTML.",
  },
];

// The one web layer: one shared script (common/web/static/classhub.js, window.classhub)
// makes every page's requests, the service's and the hub's APIs (apiClient, serviceClient)
// and the file store's signed uploads and downloads (uploadToStore, readFromStore), with
// their messages; and its withButton makes a button busy while its work runs. A page
// script (services/*/static, the templates' inline scripts) that calls fetch or
// XMLHttpRequest, or sets a button's disabled to true or false by hand, is a copy of it.
// (disabled = <a condition> says what may be done, and is fine.) Allow-list:
// REQUESTS_ALLOWED_IN, today classhub.js alone.
const REQUESTS_ALLOWED_IN = ["common/web/static/classhub.js"];
const ONE_CLIENT =
  "Use window.classhub (apiClient, serviceClient, uploadToStore, readFromStore): " +
  "requests are made in common/web/static/classhub.js only.";
const NO_OWN_BUSY_BUTTONS = [
  {
    selector: "AssignmentExpression[left.property.name='disabled'][right.type='Literal']",
    message: "Make a button busy with window.classhub.withButton(button, work).",
  },
];
const ONE_WEB_LAYER = {
  "no-restricted-syntax": ["error", ...NO_HTML_SINKS, ...NO_OWN_BUSY_BUTTONS],
  "no-restricted-globals": [
    "error",
    { name: "fetch", message: ONE_CLIENT },
    { name: "XMLHttpRequest", message: ONE_CLIENT },
  ],
  "no-restricted-properties": [
    "error",
    { object: "window", property: "fetch", message: ONE_CLIENT },
    { object: "window", property: "XMLHttpRequest", message: ONE_CLIENT },
    { object: "globalThis", property: "fetch", message: ONE_CLIENT },
    { object: "globalThis", property: "XMLHttpRequest", message: ONE_CLIENT },
  ],
};

const browserScript = {
  ecmaVersion: 2022,
  sourceType: "script",
  globals: { ...globals.browser },
};

const rules = {
  ...js.configs.recommended.rules,
  // every variable, argument before the last used one, and caught error is used
  "no-unused-vars": [
    "error",
    { args: "after-used", caughtErrors: "all", ignoreRestSiblings: true },
  ],
  // == converts types: "0" == 0, null == undefined
  eqeqeq: ["error", "always"],
  // a top-level function or var in a classic script is a property of window, shared with
  // every other script on the page (the hub's own included)
  "no-implicit-globals": "error",
  "no-var": "error",
  "prefer-const": "error",
  // an inner name that hides an outer one is read by mistake for the outer
  "no-shadow": ["error", { hoist: "functions", builtinGlobals: false }],
  // only in the same scope (a TDZ error at run time); a function may name a later const
  "no-use-before-define": ["error", { functions: false, classes: false, variables: false }],
  "no-throw-literal": "error",
  "no-promise-executor-return": "error",
  "no-self-compare": "error",
  "no-template-curly-in-string": "error",
  "no-unmodified-loop-condition": "error",
  "no-unreachable-loop": "error",
  "no-constructor-return": "error",
  "no-new-wrappers": "error",
  "no-eval": "error",
  "no-implied-eval": "error",
  "no-new-func": "error",
  "no-restricted-syntax": ["error", ...NO_HTML_SINKS],
  "array-callback-return": "error",
  // a body without braces on a line of its own: the next statement added under it runs
  // unconditionally (Prettier moves a long body to its own line; add the braces then)
  curly: ["error", "multi-line"],
  "default-case-last": "error",
  radix: "error",
};

module.exports = [
  {
    ignores: [
      "node_modules/**",
      ".venv/**",
      "build/**",
      "**/*.egg-info/**",
      ".run/**",
      // the JupyterLab extension as built (images/labextension/build.sh), not its source
      "images/singleuser/classhub_singleuser/labextension/**",
    ],
  },
  {
    // classhub's JupyterLab extension (images/labextension): ES modules that its build
    // (@jupyter/builder) bundles
    files: ["images/labextension/src/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.browser } },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules,
  },

  {
    files: ["services/*/static/*.js", "common/web/static/*.js"],
    languageOptions: browserScript,
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: { ...rules, ...ONE_WEB_LAYER, strict: ["error", "global"] },
  },
  {
    // the one place that makes the pages' requests (ONE_WEB_LAYER above)
    files: REQUESTS_ALLOWED_IN,
    rules: {
      "no-restricted-globals": "off",
      "no-restricted-properties": "off",
      "no-restricted-syntax": ["error", ...NO_HTML_SINKS],
    },
  },
  {
    // inline <script>s of the Jinja templates (today the hub's sessions and accounts
    // pages); eslint-plugin-html reads only the scripts, so Jinja around them is fine
    files: [
      "hub/templates/*.html",
      "services/*/templates/*.html",
      "common/web/templates/**/*.html",
    ],
    plugins: { html },
    languageOptions: browserScript,
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: { ...rules, ...ONE_WEB_LAYER },
  },
  {
    // this file and other tooling run in Node
    files: ["eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "commonjs", globals: { ...globals.node } },
    rules: { ...rules, strict: ["error", "global"] },
  },
];
