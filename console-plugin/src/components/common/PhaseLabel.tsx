import { Label } from '@patternfly/react-core';
import type { FC } from 'react';
import { PHASE_TONE, type Tone } from '../../k8s/attachments';

const COLOR: Record<Tone, 'green' | 'blue' | 'orange' | 'red' | 'grey'> = {
  green: 'green',
  blue: 'blue',
  orange: 'orange',
  red: 'red',
  grey: 'grey',
};

const STATE_TONE: Record<string, Tone> = { Available: 'green', 'In use': 'blue', Absent: 'grey' };

/** An attachment's phase as the web UI colours it. */
export const PhaseLabel: FC<{ phase: string }> = ({ phase }) => (
  <Label color={COLOR[PHASE_TONE[phase] ?? 'grey']} data-test="phase">
    {phase}
  </Label>
);

/** A device's state: Available, In use, Absent. */
export const StateLabel: FC<{ state: string }> = ({ state }) => (
  <Label color={COLOR[STATE_TONE[state] ?? 'grey']} data-test="state">
    {state}
  </Label>
);
