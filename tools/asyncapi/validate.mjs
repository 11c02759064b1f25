// Validates AsyncAPI documents with the AsyncAPI project's own parser (@asyncapi/parser), the
// same one its CLI and Studio use. Usage: node validate.mjs FILE...
// Prints every diagnostic; exits 1 when any document has an error or a warning, so a drift
// between the generator and the specification fails the suite instead of slipping through.
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Parser, fromFile } from '@asyncapi/parser';

const SEVERITY = ['error', 'warning', 'info', 'hint'];
const parser = new Parser();
let failed = false;

for (const file of process.argv.slice(2)) {
  await readFile(file); // a missing file is an error of its own, not a parser diagnostic
  const { document, diagnostics } = await fromFile(parser, resolve(file)).parse();
  for (const d of diagnostics) {
    const where = (d.path || []).join('/');
    const level = SEVERITY[d.severity] ?? String(d.severity);
    console.log(`${file}: ${level} [${d.code}] ${where}: ${d.message}`);
    if (d.severity <= 1) failed = true;
  }
  if (document === undefined) failed = true;
  console.log(`${file}: ${document === undefined ? 'INVALID' : 'valid'} AsyncAPI ${document?.version() ?? ''}`);
}
process.exit(failed ? 1 : 0);
