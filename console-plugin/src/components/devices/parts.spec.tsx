import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { deviceRows, devicesByNode, NO_FILTER } from '../../k8s/devices';
import { policyRows } from '../../k8s/policies';
import { device, policy } from '../../test/objects';
import { DeviceFilters } from './DeviceFilters';
import { NodeDevices } from './DevicesTable';
import { PoliciesSection } from './PoliciesSection';

const now = new Date('2026-12-07T12:00:00Z');

describe('DeviceFilters', () => {
  it('reports each change', async () => {
    const user = userEvent.setup();
    const onChange = jest.fn();
    render(<DeviceFilters filter={NO_FILTER} nodes={['node1', 'node2']} onChange={onChange} />);
    await user.selectOptions(screen.getByLabelText('Node'), 'node2');
    expect(onChange).toHaveBeenLastCalledWith({ node: 'node2', state: '', text: '' });
    await user.selectOptions(screen.getByLabelText('State'), 'Absent');
    expect(onChange).toHaveBeenLastCalledWith({ node: '', state: 'Absent', text: '' });
  });
});

describe('NodeDevices', () => {
  it('shows when a device was last seen', () => {
    const [group] = devicesByNode(deviceRows([device('d1')], [], now));
    render(<NodeDevices group={group} />);
    expect(screen.getByTestId('device-d1')).toHaveTextContent('1m ago');
  });
});

describe('PoliciesSection', () => {
  it('says that no policy means no namespace may attach', () => {
    render(<PoliciesSection rows={[]} devices={[]} />);
    expect(
      screen.getByText('No USBPolicy exists: no namespace may attach any device.'),
    ).toBeInTheDocument();
  });

  it('shows namespace selectors and offers no change when read-only', () => {
    const rows = policyRows(
      [
        {
          ...policy('p', [], {}),
          spec: { namespaceSelector: { matchLabels: { team: 'lab' } } },
        },
      ],
      now,
    );
    render(<PoliciesSection rows={rows} devices={[]} />);
    expect(screen.getByTestId('policy-p')).toHaveTextContent('namespaces with team=lab');
    expect(screen.queryByRole('button', { name: 'Grant' })).not.toBeInTheDocument();
  });
});
