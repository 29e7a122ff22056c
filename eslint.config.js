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
    rules: { ...rules, strict: ["error", "global"] },
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
    rules,
  },
  {
    // this file and other tooling run in Node
    files: ["eslint.config.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "commonjs", globals: { ...globals.node } },
    rules: { ...rules, strict: ["error", "global"] },
  },
];
