#!/usr/bin/env node
// The `sso-gateway` command (package.json `bin`): see `sso-gateway --help` and the README.
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env })
