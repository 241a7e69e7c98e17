#!/usr/bin/env node
// The `ferry` binary: runs the compiled CLI (npm run build puts it in dist/).
import { main } from '../dist/main.js';

await main(process.argv);
