// ESLint flat config: typescript-eslint's recommended rules, plus the one line the architecture draws
// hardest — the consensus core is pure: no I/O, no clock, no randomness of its own.
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/proto/*.js', 'src/proto/*.d.ts', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
    },
  },
  {
    files: ['src/consensus/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['node:*', 'fs', 'net', 'timers', 'crypto', 'classic-level', '../../node/*', '../../meta/*'] },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'the core counts ticks; time comes from the driver' },
        { object: 'Math', property: 'random', message: 'use the injected seeded Rng' },
        { object: 'performance', property: 'now', message: 'the core counts ticks' },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask'],
    },
  },
)
