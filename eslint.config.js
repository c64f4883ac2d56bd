import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import globals from 'globals'

export default tseslint.config(
  {
    ignores: ['dist/**', 'node_modules/**', 'bench/node_modules/**', 'docs/api/**', '.scratch/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': 'error',
    },
  },
  {
    files: ['examples/**', 'bench/**', 'scripts/**', 'test/**', 'lib/cli/**'],
    rules: { 'no-console': 'off' },
  },
  {
    // The dashboard page runs in the browser.
    files: ['dashboard/**'],
    languageOptions: { globals: globals.browser },
  },
)
