import { Button, Content, Title } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import type { FC } from 'react';
import type { AttachmentRow } from '../../k8s/attachments';
import type { DeviceRow } from '../../k8s/devices';
import { PhaseLabel } from '../common/PhaseLabel';

interface Props {
  rows: AttachmentRow[];
  devices: Map<string, DeviceRow>;
  /** undefined: the user may not detach (the table is read-only). */
  onDetach?: (row: AttachmentRow) => void;
  busy?: string;
}

const DeviceCell: FC<{ row: AttachmentRow; device?: DeviceRow }> = ({ row, device }) => {
  if (!row.device) {
    return <span>wants {row.wants}</span>;
  }
  if (!device) {
    return <span>{row.device}</span>;
  }
  return (
    <div data-test="device">
      <div>
        <strong>{device.product}</strong> ({device.ids})
      </div>
      <div>{device.name}</div>
      {device.serial && <div>serial {device.serial}</div>}
      <div>
        {device.node} port {device.port}
      </div>
    </div>
  );
};

/** The VM's USB attachments: phase, device, bytes to and from the VM, reconnects, last error. */
export const AttachmentsTable: FC<Props> = ({ rows, devices, onDetach, busy }) => (
  <section data-test="attachments">
    <Title headingLevel="h3">Attachments</Title>
    {rows.length === 0 ? (
      <Content component="p">No USB device is attached to this VM, and none is asked for.</Content>
    ) : (
      <Table aria-label="USB attachments" variant="compact">
        <Thead>
          <Tr>
            <Th modifier="wrap">Attachment</Th>
            <Th modifier="wrap">Phase</Th>
            <Th modifier="wrap">Device</Th>
            <Th modifier="wrap">To VM</Th>
            <Th modifier="wrap">From VM</Th>
            <Th modifier="wrap">Reconnects</Th>
            <Th modifier="wrap">Last error</Th>
            <Th modifier="wrap">Since</Th>
            {onDetach && <Th screenReaderText="Actions" />}
          </Tr>
        </Thead>
        <Tbody>
          {rows.map((row) => (
            <Tr key={row.name} data-test={`attachment-${row.name}`}>
              <Td dataLabel="Attachment">{row.name}</Td>
              <Td dataLabel="Phase">
                <PhaseLabel phase={row.shownPhase} />
                {row.message && <div data-test="message">{row.message}</div>}
              </Td>
              <Td dataLabel="Device">
                <DeviceCell row={row} device={devices.get(row.device)} />
              </Td>
              <Td dataLabel="To VM" data-test="to-vm">
                {row.toVM}
              </Td>
              <Td dataLabel="From VM" data-test="from-vm">
                {row.fromVM}
              </Td>
              <Td dataLabel="Reconnects">{row.reconnects}</Td>
              <Td dataLabel="Last error">{row.lastError || '—'}</Td>
              <Td dataLabel="Since" title={row.since}>
                {row.sinceAge}
              </Td>
              {onDetach && (
                <Td dataLabel="Actions">
                  <Button
                    variant="secondary"
                    isDanger
                    size="sm"
                    isDisabled={row.detaching || busy === row.name}
                    onClick={() => {
                      onDetach(row);
                    }}
                  >
                    Detach
                  </Button>
                </Td>
              )}
            </Tr>
          ))}
        </Tbody>
      </Table>
    )}
  </section>
);
