import type { Config } from 'jest';

// The console provides the SDK's hooks and components at run time (module federation); in unit
// tests they come from src/test/console-sdk.tsx, which serves fixtures the tests set.
const config: Config = {
  testEnvironment: 'jsdom',
  testRegex: '.*\\.spec\\.(ts|tsx)$',
  moduleNameMapper: {
    '^@openshift-console/dynamic-plugin-sdk$': '<rootDir>/src/test/console-sdk.tsx',
    '\\.css$': '<rootDir>/__mocks__/styleMock.ts',
  },
  transform: {
    '^.+\\.[jt]sx?$': [
      '@swc/jest',
      {
        jsc: { transform: { react: { runtime: 'automatic' } } },
        module: { type: 'commonjs', noInterop: false },
        minify: false,
      },
    ],
  },
  setupFilesAfterEnv: ['./setup-tests.ts'],
};

export default config;
