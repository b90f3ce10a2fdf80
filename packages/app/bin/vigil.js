#!/usr/bin/env node
// The `vigil` command. A committed file rather than dist/cli/main.js itself, so that npm links
// the command at install time, before the build that writes dist/ has run.
import '../dist/cli/main.js';
