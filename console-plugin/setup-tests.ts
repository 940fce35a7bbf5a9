import '@testing-library/jest-dom';
import { configure } from '@testing-library/react';
import { fixtures } from './src/test/console-sdk';

configure({ testIdAttribute: 'data-test' });

afterEach(() => {
  fixtures.reset();
  jest.clearAllMocks();
});
