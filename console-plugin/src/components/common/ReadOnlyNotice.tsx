import { Alert } from '@patternfly/react-core';
import type { FC, ReactNode } from 'react';

/** Says that (and why) a view is read-only: the API server's access review said no. */
export const ReadOnlyNotice: FC<{ title: string; children: ReactNode }> = ({ title, children }) => (
  <Alert variant="info" isInline title={title} data-test="read-only">
    {children}
  </Alert>
);
