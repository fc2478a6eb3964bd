#!/usr/bin/env node
// Process entry of the tpies daemon: the only place that calls process.exit.
import { runTpies } from '../cli/tpies.js';
import { processIo } from '../cli/io.js';

process.exit(await runTpies(process.argv.slice(2), processIo()));
