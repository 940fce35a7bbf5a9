import { render, screen } from '@testing-library/react';
import { attachProgress } from '../../k8s/progress';
import { attachment } from '../../test/objects';
import { PhaseLabel, StateLabel } from './PhaseLabel';
import { ProgressPanel } from './ProgressPanel';
import { ReadOnlyNotice } from './ReadOnlyNotice';

describe('PhaseLabel and StateLabel', () => {
  it('colour phases and states as the web UI does', () => {
    render(
      <>
        <PhaseLabel phase="NotAllowed" />
        <StateLabel state="Available" />
      </>,
    );
    expect(screen.getByTestId('phase')).toHaveClass('pf-m-red');
    expect(screen.getByTestId('state')).toHaveClass('pf-m-green');
  });
});

describe('ProgressPanel', () => {
  it('marks the steps done and the current one', () => {
    render(
      <ProgressPanel
        progress={attachProgress(attachment('a', 'vm1', { phase: 'Connecting' }), 'vm1', 'x')}
      />,
    );
    const steps = screen.getAllByRole('listitem');
    expect(steps.map((s) => s.textContent)).toEqual([
      'Requested',
      'Bound',
      'Connecting',
      'Attached',
    ]);
    expect(steps[0]).toHaveClass('pf-m-success');
    expect(steps[1]).toHaveClass('pf-m-success');
    expect(steps[2]).toHaveClass('pf-m-info');
    expect(steps[3]).toHaveClass('pf-m-pending');
  });

  it('shows a refusal without steps', () => {
    render(
      <ProgressPanel
        progress={attachProgress(
          attachment('a', 'vm1', { phase: 'Failed', lastError: 'usbredir: device gone' }),
          'vm1',
          'x',
        )}
      />,
    );
    expect(screen.queryByText('Requested')).not.toBeInTheDocument();
    expect(screen.getByTestId('progress-text')).toHaveTextContent('usbredir: device gone');
  });
});

describe('ReadOnlyNotice', () => {
  it('says why', () => {
    render(<ReadOnlyNotice title="Read-only">because</ReadOnlyNotice>);
    expect(screen.getByTestId('read-only')).toHaveTextContent('Read-onlybecause');
  });
});
