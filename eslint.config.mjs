// ESLint for dispatch: typescript-eslint's recommended rules, a 140-column limit, and a sandbox
// rule: code that the workflow bundle includes may not import Node built-ins, ssh2,
// better-sqlite3 or the I/O layers at run time (type imports are erased and allowed).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const SANDBOX_FILES = ['src/workflows/**/*.ts', 'src/reaper/driver.ts', 'src/common/**/*.ts'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results*.json', 'chaos/results.json', 'test/histories/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        console: 'readonly',
        process: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
        NodeJS: 'readonly',
      },
    },
    rules: {
      'max-len': ['error', { code: 140, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-empty': ['error', { allowEmptyCatch: false }],
      // Initialised-then-assigned locals read better than the alternatives here.
      'no-useless-assignment': 'off',
    },
  },
  {
    files: SANDBOX_FILES,
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'child_process', 'net', 'http', 'os', 'path', 'crypto', 'ssh2', 'better-sqlite3'],
              message: 'workflow code runs in a deterministic sandbox: no I/O modules',
              allowTypeImports: true,
            },
            {
              group: ['@temporalio/client', '@temporalio/worker', '@temporalio/activity'],
              message: 'workflow code may use @temporalio/workflow and @temporalio/common only',
              allowTypeImports: true,
            },
            {
              group: [
                '**/activities/*',
                '**/shell/*',
                '**/store/*',
                '**/workers/*',
                '**/cli/*',
                '**/config/*',
                '**/spec/*',
                '**/schedules/*',
                '**/client/*',
                '**/reaper/sweep',
                '**/reaper/steps',
                '**/reaper/nodes',
                '**/reaper/temporal',
              ],
              message: 'only types may come from the I/O layers into the workflow bundle',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['scripts/**/*.js', 'bin/**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
