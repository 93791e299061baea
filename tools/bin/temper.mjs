#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npm ci` alone leaves a working command.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
