import { Card, CardBody, CardHeader, CardTitle, Content } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import type { FC } from 'react';
import { usedBy, type NodeGroup } from '../../k8s/devices';
import { StateLabel } from '../common/PhaseLabel';

const counts = (group: NodeGroup) =>
  ['Available', 'In use', 'Absent']
    .map((s) => `${String(group.rows.filter((r) => r.state === s).length)} ${s.toLowerCase()}`)
    .join(' · ');

/** Every device of one node: identity, state, who holds it and since when, last seen. */
export const NodeDevices: FC<{ group: NodeGroup }> = ({ group }) => (
  <Card data-test={`node-${group.node}`}>
    <CardHeader>
      <CardTitle component="h2">Node {group.node}</CardTitle>
      <Content component="small">{counts(group)}</Content>
    </CardHeader>
    <CardBody>
      <Table aria-label={`Devices on ${group.node}`} variant="compact">
        <Thead>
          <Tr>
            <Th modifier="wrap">Device</Th>
            <Th modifier="wrap">IDs</Th>
            <Th modifier="wrap">Name</Th>
            <Th modifier="wrap">Serial</Th>
            <Th modifier="wrap">Port</Th>
            <Th modifier="wrap">Identity</Th>
            <Th modifier="wrap">State</Th>
            <Th modifier="wrap">Used by</Th>
            <Th modifier="wrap">Since</Th>
            <Th modifier="wrap">Last seen</Th>
          </Tr>
        </Thead>
        <Tbody>
          {group.rows.map((d) => (
            <Tr key={d.name} data-test={`device-${d.name}`}>
              <Td dataLabel="Device">{d.name}</Td>
              <Td dataLabel="IDs">{d.ids}</Td>
              <Td dataLabel="Name" title={d.catalogName ? `usb.ids: ${d.catalogName}` : undefined}>
                <span data-test="product">{d.product}</span>
                {d.manufacturer && <div>{d.manufacturer}</div>}
              </Td>
              <Td dataLabel="Serial" data-test="serial">
                {d.serial}
              </Td>
              <Td dataLabel="Port">{d.port}</Td>
              <Td dataLabel="Identity" title={d.identityKey}>
                {d.identityTier}
              </Td>
              <Td dataLabel="State">
                <StateLabel state={d.state} />
              </Td>
              <Td dataLabel="Used by">{usedBy(d)}</Td>
              <Td dataLabel="Since" title={d.since}>
                {d.sinceAge}
              </Td>
              <Td dataLabel="Last seen" title={d.lastSeen}>
                {d.lastSeenAge ? `${d.lastSeenAge} ago` : ''}
              </Td>
            </Tr>
          ))}
        </Tbody>
      </Table>
    </CardBody>
  </Card>
);
