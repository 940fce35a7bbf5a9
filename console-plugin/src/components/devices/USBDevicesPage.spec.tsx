import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fixtures, k8sCreate, k8sPatch } from '../../test/console-sdk';
import { attachment, device, HOSTILE_PRODUCT, HOSTILE_SERIAL, policy } from '../../test/objects';
import USBDevicesPage from './USBDevicesPage';

beforeEach(() => {
  fixtures.set('USBDevice', [
    device(
      'node1-1-1',
      { serial: 'AAA1' },
      { namespace: 'default', attachment: 'vm1-a', vm: 'vm1' },
    ),
    device('node1-1-2', { serial: 'BBB2', portPath: '1-2' }),
    device('node2-1-1', { node: 'node2', serial: 'CCC3', present: false, state: 'Absent' }),
  ]);
  fixtures.set('USBAttachment', [
    attachment('vm1-a', 'vm1', { phase: 'Attached', attachedSince: new Date().toISOString() }),
  ]);
  fixtures.set('USBPolicy', [policy('allow-device-node1-1-1', ['default'], { name: 'node1-1-1' })]);
});

describe('USBDevicesPage', () => {
  it('lists every device by node with state, holder and identity', () => {
    render(<USBDevicesPage />);
    expect(screen.getByRole('heading', { name: 'USB devices' })).toBeInTheDocument();
    expect(screen.getByTestId('device-count')).toHaveTextContent('3 of 3 devices');
    const node1 = screen.getByTestId('node-node1');
    expect(node1).toHaveTextContent('1 available · 1 in use · 0 absent');
    const used = within(node1).getByTestId('device-node1-1-1');
    expect(used).toHaveTextContent('In use');
    expect(used).toHaveTextContent('default/vm1');
    expect(used).toHaveTextContent('serial');
    expect(within(screen.getByTestId('node-node2')).getByTestId('state')).toHaveTextContent(
      'Absent',
    );
  });

  it('filters by node, state and text', async () => {
    const user = userEvent.setup();
    render(<USBDevicesPage />);
    await user.selectOptions(screen.getByLabelText('Node'), 'node1');
    expect(screen.queryByTestId('node-node2')).not.toBeInTheDocument();
    await user.selectOptions(screen.getByLabelText('State'), 'Available');
    expect(screen.getByTestId('device-count')).toHaveTextContent('1 of 3 devices');
    await user.selectOptions(screen.getByLabelText('State'), '');
    await user.type(screen.getByLabelText('Search devices'), 'aaa1');
    expect(screen.getByTestId('device-count')).toHaveTextContent('1 of 3 devices');
    await user.type(screen.getByLabelText('Search devices'), 'nothing');
    expect(screen.getByText('No devices match the filters')).toBeInTheDocument();
  });

  it('grants a namespace the use of a device with the policy kubectl usb allow makes', async () => {
    const user = userEvent.setup();
    render(<USBDevicesPage />);
    await user.selectOptions(screen.getByLabelText('Device'), 'node1-1-2');
    await user.type(screen.getByLabelText('Namespace'), 'lab');
    await user.click(screen.getByRole('button', { name: 'Grant' }));
    expect(await screen.findByTestId('policy-outcome')).toHaveTextContent(
      'The new policy allow-device-node1-1-2 lets lab attach node1-1-2.',
    );
    expect(k8sCreate).toHaveBeenCalledTimes(1);
    expect(await screen.findByTestId('policy-allow-device-node1-1-2')).toHaveTextContent('lab');
  });

  it('extends the existing policy for the same device', async () => {
    const user = userEvent.setup();
    render(<USBDevicesPage />);
    await user.selectOptions(screen.getByLabelText('Device'), 'node1-1-1');
    await user.type(screen.getByLabelText('Namespace'), 'lab');
    await user.click(screen.getByRole('button', { name: 'Grant' }));
    expect(await screen.findByTestId('policy-outcome')).toHaveTextContent(
      'Policy allow-device-node1-1-1 now includes lab.',
    );
    expect(fixtures.get('USBPolicy')[0]).toMatchObject({
      spec: { namespaces: ['default', 'lab'] },
    });
  });

  it('refuses an invalid namespace before asking the API', async () => {
    const user = userEvent.setup();
    render(<USBDevicesPage />);
    await user.selectOptions(screen.getByLabelText('Device'), 'node1-1-1');
    await user.type(screen.getByLabelText('Namespace'), 'Not Valid');
    await user.click(screen.getByRole('button', { name: 'Grant' }));
    expect(screen.getByTestId('policy-outcome')).toHaveTextContent(
      "namespace 'Not Valid' is not a valid name",
    );
    expect(k8sPatch).not.toHaveBeenCalled();
  });

  it('revokes a namespace', async () => {
    const user = userEvent.setup();
    render(<USBDevicesPage />);
    await user.click(screen.getByRole('button', { name: 'Revoke default' }));
    expect(await screen.findByTestId('policy-outcome')).toHaveTextContent(
      'Policy allow-device-node1-1-1 no longer includes default.',
    );
    expect(fixtures.get('USBPolicy')[0]).toMatchObject({ spec: { namespaces: [] } });
  });

  it("shows the API server's refusal of a revoke", async () => {
    const user = userEvent.setup();
    k8sPatch.mockRejectedValueOnce(new Error('usbpolicies "allow-device-node1-1-1" is forbidden'));
    render(<USBDevicesPage />);
    await user.click(screen.getByRole('button', { name: 'Revoke default' }));
    expect(await screen.findByTestId('policy-outcome')).toHaveTextContent(
      'The API server refusedusbpolicies "allow-device-node1-1-1" is forbidden',
    );
  });

  it('is read-only, and says why, for a user who may read but not change policies', () => {
    fixtures.allow((attrs) => attrs.verb === 'list');
    render(<USBDevicesPage />);
    expect(screen.getByTestId('read-only')).toHaveTextContent(
      "Your account may not create and change USBPolicies, so it cannot grant or revoke a namespace's use of a device.",
    );
    expect(screen.queryByRole('button', { name: 'Grant' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Revoke default' })).not.toBeInTheDocument();
    expect(screen.getByTestId('policy-allow-device-node1-1-1')).toBeInTheDocument();
  });

  it('hides the policies from a user who may not list them, and says so', async () => {
    fixtures.allow((attrs) => attrs.resource !== 'usbpolicies');
    render(<USBDevicesPage />);
    await waitFor(() => {
      expect(screen.getByTestId('read-only')).toHaveTextContent(
        'Your account may not list USBPolicies',
      );
    });
    expect(screen.queryByTestId('policies')).not.toBeInTheDocument();
  });

  it("shows the API's reason when the devices cannot be read", () => {
    fixtures.fail('USBDevice', new Error('usbdevices.usb.kubevirt-usb.io is forbidden'));
    render(<USBDevicesPage />);
    expect(screen.getByText('usbdevices.usb.kubevirt-usb.io is forbidden')).toBeInTheDocument();
  });

  it('renders hostile hardware strings as text, not markup', () => {
    fixtures.set('USBDevice', [
      device('node1-1-1', { product: HOSTILE_PRODUCT, serial: HOSTILE_SERIAL }),
    ]);
    const { container } = render(<USBDevicesPage />);
    expect(screen.getByTestId('product')).toHaveTextContent(
      '<img src=x onerror="alert(1)"><b>USB\\u202eKey</b>',
    );
    expect(screen.getByTestId('serial')).toHaveTextContent(
      '<script>alert("serial")</script>\\x1b[31m',
    );
    // No element may be made from the hostile markup: only a DOM query can show that.
    // eslint-disable-next-line testing-library/no-container, testing-library/no-node-access
    expect(container.querySelector('img, script, b')).toBeNull();
  });
});
