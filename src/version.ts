// The version every node reports (/health, `hopsd --version`, the OpenAPI document). Read from
// package.json at build time (esbuild inlines the JSON into the single binary), so there is one source.
import pkg from '../package.json' with { type: 'json' }

export const VERSION: string = pkg.version
