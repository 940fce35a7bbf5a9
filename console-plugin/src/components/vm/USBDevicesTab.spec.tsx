import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { fixtures, k8sCreate, k8sDelete, k8sPatch } from '../../test/console-sdk';
import type { USBAttachment } from '../../k8s/models';
import { attachment, device, HOSTILE_PRODUCT, HOSTILE_SERIAL, vm, vmi } from '../../test/objects';
import USBDevicesTab from './USBDevicesTab';

const vm1 = vm('vm1');

const setStatus = (name: string, status: NonNullable<USBAttachment['status']>) => {
  const found = fixtures.get('USBAttachment').find((a) => a.metadata?.name === name);
  act(() => {
    fixtures.update('USBAttachment', { ...found, status });
  });
};

beforeEach(() => {
  fixtures.set('USBDevice', [
    device('node1-1-1', { serial: 'AAA1' }),
    device('node1-1-2', { serial: 'BBB2', portPath: '1-2' }),
  ]);
  fixtures.set('VirtualMachineInstance', [vmi('vm1')]);
});

describe('USBDevicesTab', () => {
  it("lists the VM's attachments with device, bytes, reconnects and last error", () => {
    fixtures.set('USBDevice', [
      device(
        'node1-1-1',
        { serial: 'AAA1' },
        { namespace: 'default', attachment: 'vm1-a', vm: 'vm1' },
      ),
    ]);
    fixtures.set('USBAttachment', [
      attachment('vm1-a', 'vm1', {
        phase: 'Attached',
        device: 'node1-1-1',
        node: 'node1',
        bytesToVM: 2048,
        bytesFromVM: 512,
        reconnects: 1,
        lastError: 'connection reset by peer',
      }),
      attachment('vm2-a', 'vm2', { phase: 'Attached' }),
    ]);
    render(<USBDevicesTab obj={vm1} />);
    const row = screen.getByTestId('attachment-vm1-a');
    expect(within(row).getByTestId('phase')).toHaveTextContent('Attached');
    expect(within(row).getByTestId('device')).toHaveTextContent(
      'QEMU USB HARDDRIVE (46f4:0001)node1-1-1serial AAA1node1 port 1-1',
    );
    expect(within(row).getByTestId('to-vm')).toHaveTextContent('2.0 KiB');
    expect(within(row).getByTestId('from-vm')).toHaveTextContent('512 B');
    expect(row).toHaveTextContent('connection reset by peer');
    expect(screen.queryByTestId('attachment-vm2-a')).not.toBeInTheDocument();
    expect(screen.getByTestId('slots-used')).toHaveTextContent('1 of 4 in use');
  });

  it('shows byte counts growing as the watch reports them', () => {
    fixtures.set('USBAttachment', [
      attachment('vm1-a', 'vm1', { phase: 'Attached', bytesToVM: 10 }),
    ]);
    render(<USBDevicesTab obj={vm1} />);
    expect(screen.getByTestId('to-vm')).toHaveTextContent('10 B');
    setStatus('vm1-a', { phase: 'Attached', bytesToVM: 4096 });
    expect(screen.getByTestId('to-vm')).toHaveTextContent('4.0 KiB');
  });

  it('attaches a free device and follows Requested, Bound, Connecting, Attached', async () => {
    const user = userEvent.setup();
    render(<USBDevicesTab obj={vm1} />);
    await user.selectOptions(screen.getByLabelText('Device'), 'node1-1-1');
    await user.click(screen.getByRole('button', { name: 'Attach' }));
    expect(k8sCreate).toHaveBeenCalledWith(
      expect.objectContaining({
        data: expect.objectContaining({
          metadata: expect.objectContaining({
            generateName: 'vm1-',
            namespace: 'default',
          }) as unknown,
          spec: { vm: 'vm1', device: { name: 'node1-1-1' } },
        }) as unknown,
      }),
    );
    const progress = await screen.findByTestId('progress');
    expect(progress).toHaveTextContent('Attaching name=node1-1-1 to vm1');
    expect(progress).toHaveTextContent('Waiting for the controller to bind a device.');
    const name = fixtures.get('USBAttachment')[0].metadata?.name ?? '';
    setStatus(name, { phase: 'Bound', device: 'node1-1-1', node: 'node1' });
    expect(screen.getByTestId('progress-text')).toHaveTextContent(
      "Bound to node1-1-1 on node1; waiting for its node's agent.",
    );
    setStatus(name, { phase: 'Connecting', device: 'node1-1-1' });
    expect(screen.getByTestId('progress-text')).toHaveTextContent(
      "The node's agent is connecting the device to the VM's usbredir slot.",
    );
    setStatus(name, { phase: 'Attached', device: 'node1-1-1' });
    expect(screen.getByTestId('progress')).toHaveTextContent('Attached to vm1');
    expect(screen.getByTestId('progress-text')).toHaveTextContent('node1-1-1 is in vm1.');
  });

  it("shows the controller's refusal in its own words", async () => {
    const user = userEvent.setup();
    render(<USBDevicesTab obj={vm1} />);
    await user.type(screen.getByLabelText('or a selector'), 'serial=ZZZ9');
    await user.click(screen.getByRole('button', { name: 'Attach' }));
    await screen.findByTestId('progress');
    const name = fixtures.get('USBAttachment')[0].metadata?.name ?? '';
    setStatus(name, {
      phase: 'NotAllowed',
      message: 'no USBPolicy lets namespace default attach serial ZZZ9',
    });
    expect(screen.getByTestId('progress')).toHaveTextContent('NotAllowed: not attached yet');
    expect(screen.getByTestId('progress-text')).toHaveTextContent(
      'no USBPolicy lets namespace default attach serial ZZZ9',
    );
  });

  it("shows the API server's refusal of the create", async () => {
    const user = userEvent.setup();
    k8sCreate.mockRejectedValueOnce(
      new Error('usbattachments.usb.kubevirt-usb.io is forbidden: User "dev" cannot create'),
    );
    render(<USBDevicesTab obj={vm1} />);
    await user.selectOptions(screen.getByLabelText('Device'), 'node1-1-2');
    await user.click(screen.getByRole('button', { name: 'Attach' }));
    expect(await screen.findByTestId('refusal')).toHaveTextContent(
      'The API server refused the attachmentusbattachments.usb.kubevirt-usb.io is forbidden',
    );
  });

  it('says what is wrong with a typed selector before asking the API', async () => {
    const user = userEvent.setup();
    render(<USBDevicesTab obj={vm1} />);
    await user.type(screen.getByLabelText('or a selector'), 'colour=red');
    await user.click(screen.getByRole('button', { name: 'Attach' }));
    expect(screen.getByTestId('attach-help')).toHaveTextContent("cannot read 'colour=red'");
    expect(k8sCreate).not.toHaveBeenCalled();
  });

  it('detaches and says when the device is free again', async () => {
    const user = userEvent.setup();
    fixtures.set('USBAttachment', [attachment('vm1-a', 'vm1', { phase: 'Attached' })]);
    k8sDelete.mockImplementationOnce(() => Promise.resolve({}));
    render(<USBDevicesTab obj={vm1} />);
    await user.click(screen.getByRole('button', { name: 'Detach' }));
    expect(k8sDelete).toHaveBeenCalledWith(
      expect.objectContaining({
        resource: expect.objectContaining({
          metadata: expect.objectContaining({ name: 'vm1-a' }) as unknown,
        }) as unknown,
      }),
    );
    expect(await screen.findByTestId('progress-text')).toHaveTextContent(
      'Waiting for the device to be released (now Attached).',
    );
    act(() => {
      fixtures.remove('USBAttachment', 'vm1-a');
    });
    expect(screen.getByTestId('progress')).toHaveTextContent('Detached from vm1');
  });

  it('is read-only, and says why, for a user who may not attach', () => {
    fixtures.allow((attrs) => attrs.resource !== 'usbattachments');
    fixtures.set('USBAttachment', [attachment('vm1-a', 'vm1', { phase: 'Attached' })]);
    render(<USBDevicesTab obj={vm1} />);
    expect(screen.getByTestId('read-only')).toHaveTextContent(
      'You may view but not attach devices in namespace default: your account may not create USBAttachments there.',
    );
    expect(screen.queryByRole('button', { name: 'Attach' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Detach' })).not.toBeInTheDocument();
  });

  it('explains missing clientPassthrough and fixes it after asking', async () => {
    const user = userEvent.setup();
    const bare = vm('vm1', false);
    fixtures.set('VirtualMachine', [bare]);
    fixtures.set('VirtualMachineInstance', [vmi('vm1', false)]);
    render(<USBDevicesTab obj={bare} />);
    expect(screen.getByTestId('passthrough')).toHaveTextContent(
      'USB client passthrough is not enabled: the VM cannot take USB devices',
    );
    await user.click(screen.getByRole('button', { name: 'Enable USB passthrough…' }));
    const dialog = screen.getByRole('dialog');
    expect(dialog).toHaveTextContent('Restart vm1');
    expect(k8sPatch).not.toHaveBeenCalled();
    await user.click(within(dialog).getByRole('button', { name: 'Enable and restart' }));
    await waitFor(() => {
      expect(screen.queryByRole('dialog')).not.toBeInTheDocument();
    });
    expect(k8sPatch).toHaveBeenCalledWith(
      expect.objectContaining({
        data: [
          { op: 'add', path: '/spec/template/spec/domain/devices/clientPassthrough', value: {} },
        ],
      }),
    );
    expect(fixtures.get('VirtualMachine')[0]).toMatchObject({
      spec: { template: { spec: { domain: { devices: { clientPassthrough: {} } } } } },
    });
    expect(fixtures.get('VirtualMachineInstance')).toEqual([]);
  });

  it('does nothing when the confirmation is cancelled', async () => {
    const user = userEvent.setup();
    const bare = vm('vm1', false);
    render(<USBDevicesTab obj={bare} />);
    await user.click(screen.getByRole('button', { name: 'Enable USB passthrough…' }));
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(k8sPatch).not.toHaveBeenCalled();
    expect(k8sDelete).not.toHaveBeenCalled();
  });

  it('renders hostile hardware strings as text, not markup', async () => {
    const user = userEvent.setup();
    fixtures.set('USBDevice', [
      device('node1-1-1', { product: HOSTILE_PRODUCT, serial: HOSTILE_SERIAL }),
    ]);
    const { container } = render(<USBDevicesTab obj={vm1} />);
    const option = screen.getByRole('option', { name: /alert\(1\)/ });
    expect(option).toHaveTextContent(
      '<img src=x onerror="alert(1)"><b>USB\\u202eKey</b> (<script>alert("serial")</script>\\x1b[31m) on node1',
    );
    // No element may be made from the hostile markup: only a DOM query can show that.
    // eslint-disable-next-line testing-library/no-container, testing-library/no-node-access
    expect(container.querySelector('img, script, b')).toBeNull();
    await user.selectOptions(screen.getByLabelText('Device'), 'node1-1-1');
    // No element may be made from the hostile markup: only a DOM query can show that.
    // eslint-disable-next-line testing-library/no-container, testing-library/no-node-access
    expect(container.querySelector('img, script')).toBeNull();
  });
});
