// Copies GraphiQL's browser assets, as installed by `npm ci` from package-lock.json, into ./static,
// where the gateway serves them (gateway/graphiql_page.py). With them: every installed package's
// licence (THIRD-PARTY-LICENSES.txt: GraphiQL's bundle contains its dependencies) and
// manifest.json (the files and the pinned versions). No network: it only reads node_modules.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const out = join(here, "static");

// What the page loads, by the name it is served under.
const FILES = {
  "react.production.min.js": "react/umd/react.production.min.js",
  "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
  "graphiql.min.js": "graphiql/graphiql.min.js",
  "graphiql.min.css": "graphiql/graphiql.min.css",
};

const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const installed = Object.entries(lock.packages)
  .filter(([path, entry]) => path.startsWith("node_modules/") && !entry.dev)
  .map(([path, entry]) => ({ path, name: path.split("node_modules/").pop(), ...entry }))
  .sort((a, b) => a.name.localeCompare(b.name) || a.path.localeCompare(b.path));

for (const { path } of installed) {
  if (!existsSync(join(here, path, "package.json"))) {
    throw new Error(`${path} is not installed: run \`npm ci --ignore-scripts\` first`);
  }
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out);
for (const [name, source] of Object.entries(FILES)) {
  copyFileSync(join(modules, source), join(out, name));
}

function licenceText(directory) {
  const file = readdirSync(directory).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  return file ? readFileSync(join(directory, file), "utf8").trim() : null;
}

const notices = [
  "Third-party software in GraphiQL's assets served by Alliance Gateway, as installed from",
  "gateway/graphiql/package-lock.json. Each package's name, version, licence and licence text.",
  "",
];
for (const entry of installed) {
  const text = licenceText(join(here, entry.path));
  notices.push("=".repeat(78), `${entry.name}@${entry.version} (${entry.license ?? "see text"})`, "");
  notices.push(text ?? `No licence file in the package; its package.json says: ${entry.license}.`, "");
}
writeFileSync(join(out, "THIRD-PARTY-LICENSES.txt"), notices.join("\n"));

const direct = Object.keys(lock.packages[""].dependencies);
const manifest = {
  files: Object.keys(FILES),
  licences: "THIRD-PARTY-LICENSES.txt",
  packages: Object.fromEntries(
    direct.map((name) => {
      const entry = lock.packages[`node_modules/${name}`];
      return [name, { version: entry.version, license: entry.license, integrity: entry.integrity }];
    }),
  ),
};
writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`GraphiQL assets in ${out}: ${direct.map((n) => `${n}@${manifest.packages[n].version}`).join(", ")}`);
