#!/usr/bin/env node
// Process entry of tpiesctl, the control client: the only place it calls process.exit.
import { runTpiesctl } from '../cli/ctl.js';
import { processIo } from '../cli/io.js';

process.exit(await runTpiesctl(process.argv.slice(2), processIo()));
