/* The "USB devices" tab of a VirtualMachine's page (a console.tab/horizontalNav extension for
 * kubevirt.io~v1~VirtualMachine; kubevirt-plugin's VM page renders those). Everything it shows is
 * watched live and everything it does runs with the signed-in user's own rights. */
import {
  k8sCreate,
  k8sDelete,
  k8sPatch,
  type PageComponentProps,
} from '@openshift-console/dynamic-plugin-sdk';
import { Alert, PageSection, Stack, StackItem } from '@patternfly/react-core';
import { useMemo, useState, type FC } from 'react';
import { attachmentRows, type AttachmentRow } from '../../k8s/attachments';
import { deviceRows } from '../../k8s/devices';
import {
  API_VERSION,
  USBAttachmentModel,
  VirtualMachineInstanceModel,
  VirtualMachineModel,
  type DeviceSelector,
  type USBAttachment,
  type VirtualMachine,
} from '../../k8s/models';
import { selectorSummary } from '../../k8s/selectors';
import { apiMessage } from '../../k8s/text';
import { passthroughPatch, planPrepare } from '../../k8s/vmprep';
import { useActionProgress } from '../../hooks/useActionProgress';
import { useNow } from '../../hooks/useNow';
import { useAttachments, useDevices, useVMI } from '../../hooks/useUSBWatches';
import { useVMRights } from '../../hooks/useUSBRights';
import { ProgressPanel } from '../common/ProgressPanel';
import { ReadOnlyNotice } from '../common/ReadOnlyNotice';
import { AttachForm } from './AttachForm';
import { AttachmentsTable } from './AttachmentsTable';
import { PassthroughFix } from './PassthroughFix';
import { SlotsView } from './SlotsView';

/** The USBAttachment an attach asks for (src/kubevirt_usb/web/forms.py: attach_request). */
export const attachmentFor = (
  vm: string,
  namespace: string,
  device: DeviceSelector,
): USBAttachment => ({
  apiVersion: API_VERSION,
  kind: 'USBAttachment',
  metadata: {
    generateName: `${vm.slice(0, 50)}-`,
    namespace,
    labels: { 'kubevirt-usb.io/vm': vm.slice(0, 63) },
  },
  spec: { vm, device },
});

const USBDevicesTab: FC<PageComponentProps<VirtualMachine>> = ({ obj }) => {
  const vm = obj?.metadata?.name ?? '';
  const namespace = obj?.metadata?.namespace ?? '';
  const now = useNow();
  const attachments = useAttachments(namespace);
  const devices = useDevices();
  const vmi = useVMI(namespace, vm);
  const rights = useVMRights(namespace, vm);
  const { progress, start } = useActionProgress(attachments.items);
  const [refusal, setRefusal] = useState<{ title: string; text: string }>();
  const [busy, setBusy] = useState<string>();

  const rows = useMemo(
    () => attachmentRows(attachments.items, vm, now),
    [attachments.items, vm, now],
  );
  const allDevices = useMemo(
    () => deviceRows(devices.items, attachments.items, now),
    [devices.items, attachments.items, now],
  );
  const byName = useMemo(() => new Map(allDevices.map((d) => [d.name, d])), [allDevices]);
  const free = allDevices.filter((d) => d.state === 'Available');
  const plan = obj ? planPrepare(obj, vmi.items) : undefined;

  if (!obj) {
    return null;
  }

  const attach = async (device: DeviceSelector) => {
    setRefusal(undefined);
    try {
      const created = await k8sCreate<USBAttachment>({
        model: USBAttachmentModel,
        data: attachmentFor(vm, namespace, device),
      });
      start({
        kind: 'attach',
        name: created.metadata?.name ?? '',
        vm,
        device: selectorSummary(device),
        created,
      });
    } catch (error) {
      setRefusal({ title: 'The API server refused the attachment', text: apiMessage(error) });
    }
  };

  const detach = async (row: AttachmentRow) => {
    setRefusal(undefined);
    setBusy(row.name);
    const target = attachments.items.find((a) => a.metadata?.name === row.name);
    try {
      if (target) {
        await k8sDelete({ model: USBAttachmentModel, resource: target });
      }
      start({ kind: 'detach', name: row.name, vm });
    } catch (error) {
      setRefusal({ title: 'The API server refused the detach', text: apiMessage(error) });
    } finally {
      setBusy(undefined);
    }
  };

  const fixPassthrough = async () => {
    if (!plan) {
      return;
    }
    try {
      if (plan.patchNeeded) {
        await k8sPatch({ model: VirtualMachineModel, resource: obj, data: passthroughPatch(obj) });
      }
      if (plan.restart === 'needed' && plan.restartByDeletingVMI && vmi.items) {
        await k8sDelete({ model: VirtualMachineInstanceModel, resource: vmi.items });
      }
    } catch (error) {
      throw new Error(apiMessage(error));
    }
  };

  const mayFix =
    rights.patchVM.allowed &&
    (plan?.restart !== 'needed' || !plan.restartByDeletingVMI || rights.restartVM.allowed);
  const needsFix = plan && (plan.patchNeeded || plan.restart === 'needed');
  const readOnly = !rights.attach.loading && !rights.attach.allowed;

  return (
    <PageSection>
      <Stack hasGutter>
        {needsFix && (
          <StackItem>
            <PassthroughFix
              vm={vm}
              namespace={namespace}
              plan={plan}
              onFix={mayFix ? fixPassthrough : undefined}
              whyNot={`You may not ${rights.patchVM.allowed ? 'restart' : 'change'} ${vm} in namespace ${namespace}; ask someone who may edit it.`}
            />
          </StackItem>
        )}
        {attachments.error !== undefined && (
          <StackItem>
            <Alert variant="danger" isInline title="Cannot read the attachments">
              {apiMessage(attachments.error)}
            </Alert>
          </StackItem>
        )}
        {readOnly && (
          <StackItem>
            <ReadOnlyNotice title="Read-only">
              You may view but not attach devices in namespace {namespace}: your account may not
              create USBAttachments there.
            </ReadOnlyNotice>
          </StackItem>
        )}
        {refusal && (
          <StackItem>
            <Alert variant="danger" isInline title={refusal.title} data-test="refusal">
              {refusal.text}
            </Alert>
          </StackItem>
        )}
        {progress && (
          <StackItem>
            <ProgressPanel progress={progress} />
          </StackItem>
        )}
        <StackItem>
          <AttachmentsTable
            rows={rows}
            devices={byName}
            onDetach={rights.detach.allowed ? (row) => void detach(row) : undefined}
            busy={busy}
          />
        </StackItem>
        <StackItem>
          <SlotsView rows={rows} />
        </StackItem>
        {rights.attach.allowed && (
          <StackItem>
            <AttachForm
              free={devices.error === undefined ? free : undefined}
              devicesError={devices.error === undefined ? undefined : apiMessage(devices.error)}
              onAttach={attach}
            />
          </StackItem>
        )}
      </Stack>
    </PageSection>
  );
};

export default USBDevicesTab;
