// Exits 0 when node_modules holds exactly what package-lock.json asks for,
// else prints why (one line) and exits 1. Plain Node, no dependencies: it
// runs before `npm ci`. Compares each locked package's version with the
// installed package.json, which is what a stale checkout gets wrong.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
function stale(why) {
  process.stdout.write(why + '\n');
  process.exit(1);
}
if (!fs.existsSync(path.join(root, 'node_modules'))) stale('node_modules is missing');
const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
for (const [where, entry] of Object.entries(lock.packages || {})) {
  // Only top-level and nested installs; '' is the project itself, and
  // optional packages for other platforms are legitimately absent.
  if (!where.startsWith('node_modules/') || entry.link) continue;
  let installed;
  try {
    installed = JSON.parse(fs.readFileSync(path.join(root, where, 'package.json'), 'utf8')).version;
  } catch {
    if (entry.optional) continue;
    stale(`${where.slice(13)} is not installed`);
  }
  if (installed !== entry.version)
    stale(`${where.slice(13)} is ${installed}, package-lock.json wants ${entry.version}`);
}
