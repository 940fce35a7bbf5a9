import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { attachmentRows } from '../../k8s/attachments';
import { deviceRows } from '../../k8s/devices';
import { planPrepare } from '../../k8s/vmprep';
import { attachment, device, vm, vmi } from '../../test/objects';
import { AttachForm } from './AttachForm';
import { AttachmentsTable } from './AttachmentsTable';
import { PassthroughFix } from './PassthroughFix';
import { SlotsView } from './SlotsView';

const now = new Date('2026-12-07T12:00:00Z');

describe('AttachForm', () => {
  it('asks for a device or a selector, not both', async () => {
    const user = userEvent.setup();
    const onAttach = jest.fn(() => Promise.resolve());
    render(<AttachForm free={deviceRows([device('d1')], [], now)} onAttach={onAttach} />);
    await user.click(screen.getByRole('button', { name: 'Attach' }));
    expect(screen.getByTestId('attach-help')).toHaveTextContent('pick a device or type a selector');
    await user.selectOptions(screen.getByLabelText('Device'), 'd1');
    await user.type(screen.getByLabelText('or a selector'), 'serial=X');
    await user.click(screen.getByRole('button', { name: 'Attach' }));
    expect(screen.getByTestId('attach-help')).toHaveTextContent('not both');
    expect(onAttach).not.toHaveBeenCalled();
  });

  it('sends a typed selector, which waits for a device', async () => {
    const user = userEvent.setup();
    const onAttach = jest.fn(() => Promise.resolve());
    render(<AttachForm free={[]} onAttach={onAttach} />);
    expect(screen.getByRole('option', { name: 'No device is free' })).toBeInTheDocument();
    await user.type(screen.getByLabelText('or a selector'), '0781:5567, node=node1');
    await user.click(screen.getByRole('button', { name: 'Attach' }));
    expect(onAttach).toHaveBeenCalledWith({ vendorId: '0781', productId: '5567', node: 'node1' });
  });

  it('offers only a selector to a user who may not list devices', () => {
    render(<AttachForm devicesError="forbidden" onAttach={jest.fn()} />);
    expect(
      screen.getByText('You cannot list devices (forbidden); type a selector instead.'),
    ).toBeInTheDocument();
  });
});

describe('AttachmentsTable', () => {
  it('says when the VM has no attachment', () => {
    render(<AttachmentsTable rows={[]} devices={new Map()} />);
    expect(
      screen.getByText('No USB device is attached to this VM, and none is asked for.'),
    ).toBeInTheDocument();
  });

  it('shows what a waiting attachment wants and the controller message', () => {
    const rows = attachmentRows(
      [
        attachment('a', 'vm1', {
          phase: 'WaitingForDevice',
          message: 'no device with serial AAA1',
        }),
      ],
      'vm1',
      now,
    );
    render(<AttachmentsTable rows={rows} devices={new Map()} />);
    expect(screen.getByText('wants serial=AAA1')).toBeInTheDocument();
    expect(screen.getByTestId('message')).toHaveTextContent('no device with serial AAA1');
    expect(screen.queryByRole('button', { name: 'Detach' })).not.toBeInTheDocument();
  });
});

describe('SlotsView', () => {
  it('shows four slots by use', () => {
    const rows = attachmentRows(
      [attachment('a', 'vm1', { phase: 'Attached', device: 'd1', bytesToVM: 5 })],
      'vm1',
      now,
    );
    render(<SlotsView rows={rows} />);
    expect(screen.getByTestId('slots-used')).toHaveTextContent('1 of 4 in use');
    expect(screen.getByTestId('slot-1')).toHaveTextContent('held by a');
    expect(screen.getByTestId('slot-1')).toHaveTextContent('5 B to VM · 0 B from VM');
    expect(screen.getByTestId('slot-4')).toHaveTextContent('free');
  });
});

describe('PassthroughFix', () => {
  it('says why a user who may not change the VM gets no fix', () => {
    render(
      <PassthroughFix
        vm="vm1"
        namespace="default"
        plan={planPrepare(vm('vm1', false), vmi('vm1', false))}
        whyNot="You may not change vm1 in namespace default; ask someone who may edit it."
      />,
    );
    expect(
      screen.queryByRole('button', { name: 'Enable USB passthrough…' }),
    ).not.toBeInTheDocument();
    expect(screen.getByTestId('passthrough-why-not')).toHaveTextContent('You may not change vm1');
  });

  it("keeps the confirmation open with the API's refusal", async () => {
    const user = userEvent.setup();
    const onFix = jest.fn(() => Promise.reject(new Error('virtualmachines "vm1" is forbidden')));
    render(
      <PassthroughFix
        vm="vm1"
        namespace="default"
        plan={planPrepare(vm('vm1', false), undefined)}
        onFix={onFix}
      />,
    );
    await user.click(screen.getByRole('button', { name: 'Enable USB passthrough…' }));
    expect(screen.getByRole('dialog')).toHaveTextContent('vm1 is not running');
    await user.click(screen.getByRole('button', { name: 'Enable' }));
    expect(await screen.findByTestId('fix-error')).toHaveTextContent(
      'virtualmachines "vm1" is forbidden',
    );
    expect(screen.getByRole('dialog')).toBeInTheDocument();
  });
});
