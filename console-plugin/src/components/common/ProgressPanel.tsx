import { Alert, ProgressStep, ProgressStepper } from '@patternfly/react-core';
import type { FC } from 'react';
import { STEPS, type Progress } from '../../k8s/progress';

const variant = (index: number, progress: Progress) => {
  if (index < progress.step || (index === progress.step && progress.settled)) {
    return 'success';
  }
  return index === progress.step ? 'info' : 'pending';
};

/** An attach's or a detach's progress: Requested, Bound, Connecting, Attached, or the
 * controller's reason in its own words. */
export const ProgressPanel: FC<{ progress: Progress }> = ({ progress }) => (
  <Alert
    variant={progress.tone}
    isInline
    title={progress.title}
    data-test="progress"
    aria-live="polite"
  >
    {progress.step >= 0 && (
      <ProgressStepper isCompact aria-label="Attach progress">
        {STEPS.map((name, index) => (
          <ProgressStep
            key={name}
            id={`usb-step-${name}`}
            titleId={`usb-step-${name}-title`}
            variant={variant(index, progress)}
            isCurrent={index === progress.step}
          >
            {name}
          </ProgressStep>
        ))}
      </ProgressStepper>
    )}
    <p data-test="progress-text">{progress.text}</p>
  </Alert>
);
