import {
  Alert,
  Button,
  List,
  ListItem,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
} from '@patternfly/react-core';
import { useState, type FC } from 'react';
import { prepareSteps, type PreparePlan } from '../../k8s/vmprep';

interface Props {
  vm: string;
  namespace: string;
  plan: PreparePlan;
  /** undefined: the user may not patch the VM (or restart it where that is needed). */
  onFix?: () => Promise<void>;
  whyNot?: string;
}

/** The VM cannot take USB devices without clientPassthrough: say so, and offer the fix (the
 * patch, and the restart it needs), asked for in a confirmation first. */
export const PassthroughFix: FC<Props> = ({ vm, namespace, plan, onFix, whyNot }) => {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState('');
  const steps = prepareSteps(plan, vm, namespace);
  const title = plan.patchNeeded
    ? 'USB client passthrough is not enabled: the VM cannot take USB devices'
    : `${vm} must restart to get its usbredir slots`;
  const confirm = async () => {
    if (!onFix) {
      return;
    }
    setBusy(true);
    setFailure('');
    try {
      await onFix();
      setAsking(false);
    } catch (error) {
      setFailure(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Alert
      variant="warning"
      isInline
      title={title}
      data-test="passthrough"
      actionLinks={
        onFix && (
          <Button
            variant="link"
            isInline
            onClick={() => {
              setAsking(true);
            }}
          >
            Enable USB passthrough…
          </Button>
        )
      }
    >
      <p>
        KubeVirt gives a VM its four usbredir slots only when its template has{' '}
        <code>spec.template.spec.domain.devices.clientPassthrough: {'{}'}</code> when the VM starts.
      </p>
      {!onFix && whyNot && <p data-test="passthrough-why-not">{whyNot}</p>}
      {failure && !asking && <p data-test="passthrough-failure">{failure}</p>}
      <Modal
        isOpen={asking}
        variant="small"
        onClose={() => {
          setAsking(false);
        }}
        aria-labelledby="usb-passthrough-title"
      >
        <ModalHeader title={`Enable USB passthrough on ${vm}?`} labelId="usb-passthrough-title" />
        <ModalBody>
          <List>
            {steps.map((step) => (
              <ListItem key={step}>{step}</ListItem>
            ))}
          </List>
          {failure && (
            <Alert variant="danger" isInline title="The API server refused" data-test="fix-error">
              {failure}
            </Alert>
          )}
        </ModalBody>
        <ModalFooter>
          <Button
            variant="primary"
            isDisabled={busy}
            isLoading={busy}
            onClick={() => {
              void confirm();
            }}
          >
            {plan.restart === 'needed' && plan.restartByDeletingVMI
              ? 'Enable and restart'
              : 'Enable'}
          </Button>
          <Button
            variant="link"
            onClick={() => {
              setAsking(false);
            }}
          >
            Cancel
          </Button>
        </ModalFooter>
      </Modal>
    </Alert>
  );
};
