/* Virtualization -> USB devices (a console.page/route at /usb-devices with its
 * console.navigation/href): every device by node, filtered; the policies for those who may read
 * them, and grant/revoke for those who may change them. Live watches, the user's own rights. */
import {
  DocumentTitle,
  k8sCreate,
  k8sPatch,
  ListPageHeader,
} from '@openshift-console/dynamic-plugin-sdk';
import {
  Alert,
  Content,
  EmptyState,
  EmptyStateBody,
  PageSection,
  Stack,
  StackItem,
} from '@patternfly/react-core';
import { useMemo, useState, type FC } from 'react';
import { deviceRows, devicesByNode, nodeNames, NO_FILTER } from '../../k8s/devices';
import { USBPolicyModel, type USBPolicy } from '../../k8s/models';
import { planGrant, policyRows, revokePatch, type PolicyRow } from '../../k8s/policies';
import { apiMessage } from '../../k8s/text';
import { useNow } from '../../hooks/useNow';
import { useAttachments, useDevices, usePolicies } from '../../hooks/useUSBWatches';
import { usePolicyRights } from '../../hooks/useUSBRights';
import { ReadOnlyNotice } from '../common/ReadOnlyNotice';
import { DeviceFilters } from './DeviceFilters';
import { NodeDevices } from './DevicesTable';
import { PoliciesSection } from './PoliciesSection';

const refused = (error: unknown): never => {
  throw new Error(apiMessage(error));
};

export const grantDevice = async (
  policies: USBPolicy[],
  device: string,
  namespace: string,
): Promise<string> => {
  const plan = planGrant(policies, device, namespace);
  const name = plan.policy.metadata?.name ?? '';
  if (plan.kind === 'unchanged') {
    return `Policy ${name} already lets ${namespace} attach ${device}.`;
  }
  try {
    if (plan.kind === 'create') {
      const made = await k8sCreate<USBPolicy>({ model: USBPolicyModel, data: plan.policy });
      return `The new policy ${made.metadata?.name ?? name} lets ${namespace} attach ${device}.`;
    }
    await k8sPatch({ model: USBPolicyModel, resource: plan.policy, data: plan.patch });
  } catch (error) {
    return refused(error);
  }
  return `Policy ${name} now includes ${namespace}.`;
};

export const revokeNamespace = async (row: PolicyRow, namespace: string): Promise<string> => {
  const patch = revokePatch(row.policy, namespace);
  if (!patch) {
    return `Policy ${row.name} did not include ${namespace}.`;
  }
  try {
    await k8sPatch({ model: USBPolicyModel, resource: row.policy, data: patch });
  } catch (error) {
    return refused(error);
  }
  return `Policy ${row.name} no longer includes ${namespace}.`;
};

const USBDevicesPage: FC = () => {
  const now = useNow();
  const [filter, setFilter] = useState(NO_FILTER);
  const devices = useDevices();
  const attachments = useAttachments();
  const rights = usePolicyRights();
  const policies = usePolicies(rights.list.allowed);
  const rows = useMemo(
    () => deviceRows(devices.items, attachments.items, now),
    [devices.items, attachments.items, now],
  );
  const groups = devicesByNode(rows, filter);
  const shown = groups.reduce((n, g) => n + g.rows.length, 0);
  const mayChange = rights.create.allowed && rights.patch.allowed;

  return (
    <>
      <DocumentTitle>USB devices</DocumentTitle>
      <ListPageHeader title="USB devices" />
      <PageSection>
        <Stack hasGutter>
          <StackItem>
            <DeviceFilters filter={filter} nodes={nodeNames(rows)} onChange={setFilter} />
          </StackItem>
          {devices.error !== undefined ? (
            <StackItem>
              <Alert variant="danger" isInline title="Cannot read the devices">
                {apiMessage(devices.error)}
              </Alert>
            </StackItem>
          ) : groups.length === 0 ? (
            <StackItem>
              <EmptyState
                titleText={rows.length ? 'No devices match the filters' : 'No devices'}
                headingLevel="h2"
              >
                <EmptyStateBody>
                  {!devices.loaded
                    ? 'Loading…'
                    : rows.length
                      ? `${String(rows.length)} devices are hidden by the filters.`
                      : 'No node agent has published a USB device yet.'}
                </EmptyStateBody>
              </EmptyState>
            </StackItem>
          ) : (
            <>
              <StackItem>
                <Content component="p" data-test="device-count">
                  {shown} of {rows.length} devices
                </Content>
              </StackItem>
              {groups.map((group) => (
                <StackItem key={group.node}>
                  <NodeDevices group={group} />
                </StackItem>
              ))}
            </>
          )}
          {!rights.list.loading && !rights.list.allowed && (
            <StackItem>
              <ReadOnlyNotice title="Policies are not shown">
                Your account may not list USBPolicies; they are shown to those who may (cluster
                administrators and the kubevirt-usb-device-viewer role).
              </ReadOnlyNotice>
            </StackItem>
          )}
          {rights.list.allowed && (
            <>
              {!rights.create.loading && !mayChange && (
                <StackItem>
                  <ReadOnlyNotice title="Read-only">
                    Your account may not create and change USBPolicies, so it cannot grant or revoke
                    a namespace&apos;s use of a device.
                  </ReadOnlyNotice>
                </StackItem>
              )}
              {policies.error !== undefined && (
                <StackItem>
                  <Alert variant="danger" isInline title="Cannot read the policies">
                    {apiMessage(policies.error)}
                  </Alert>
                </StackItem>
              )}
              <StackItem>
                <PoliciesSection
                  rows={policyRows(policies.items, now)}
                  devices={rows}
                  onGrant={mayChange ? (d, ns) => grantDevice(policies.items, d, ns) : undefined}
                  onRevoke={rights.patch.allowed ? revokeNamespace : undefined}
                />
              </StackItem>
            </>
          )}
        </Stack>
      </PageSection>
    </>
  );
};

export default USBDevicesPage;
