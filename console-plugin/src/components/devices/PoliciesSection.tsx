import {
  ActionGroup,
  Alert,
  Button,
  Form,
  FormGroup,
  FormSelect,
  FormSelectOption,
  Label,
  LabelGroup,
  TextInput,
  Title,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { useState, type FC } from 'react';
import type { DeviceRow } from '../../k8s/devices';
import type { PolicyRow } from '../../k8s/policies';
import { isDNSLabel } from '../../k8s/selectors';

interface Props {
  rows: PolicyRow[];
  devices: DeviceRow[];
  /** undefined: the user may not change policies (read-only). */
  onGrant?: (device: string, namespace: string) => Promise<string>;
  onRevoke?: (row: PolicyRow, namespace: string) => Promise<string>;
}

interface Outcome {
  tone: 'success' | 'danger';
  title: string;
  text?: string;
}

/** USBPolicies: which namespaces may attach which devices; grant and revoke a namespace's use of
 * one device (the objects `kubectl usb allow DEVICE -n NS` makes). */
export const PoliciesSection: FC<Props> = ({ rows, devices, onGrant, onRevoke }) => {
  const [device, setDevice] = useState('');
  const [namespace, setNamespace] = useState('');
  const [outcome, setOutcome] = useState<Outcome>();
  const run = async (title: string, action: () => Promise<string>) => {
    try {
      setOutcome({ tone: 'success', title, text: await action() });
    } catch (error) {
      setOutcome({
        tone: 'danger',
        title: 'The API server refused',
        text: error instanceof Error ? error.message : String(error),
      });
    }
  };
  const grant = () => {
    const ns = namespace.trim();
    if (!device || !isDNSLabel(ns)) {
      setOutcome({
        tone: 'danger',
        title: 'Cannot grant',
        text: !device
          ? 'pick a device'
          : `namespace '${ns}' is not a valid name: lower-case letters, digits and '-'`,
      });
      return;
    }
    if (onGrant) {
      void run(`Granted ${ns}`, () => onGrant(device, ns));
    }
  };
  return (
    <section data-test="policies">
      <Title headingLevel="h2">Policies</Title>
      {outcome && (
        <Alert variant={outcome.tone} isInline title={outcome.title} data-test="policy-outcome">
          {outcome.text}
        </Alert>
      )}
      {rows.length === 0 ? (
        <p>No USBPolicy exists: no namespace may attach any device.</p>
      ) : (
        <Table aria-label="Policies" variant="compact">
          <Thead>
            <Tr>
              <Th modifier="wrap">Policy</Th>
              <Th modifier="wrap">Namespaces</Th>
              <Th modifier="wrap">Devices</Th>
              <Th modifier="wrap">Age</Th>
            </Tr>
          </Thead>
          <Tbody>
            {rows.map((p) => (
              <Tr key={p.name} data-test={`policy-${p.name}`}>
                <Td dataLabel="Policy">{p.name}</Td>
                <Td dataLabel="Namespaces">
                  <LabelGroup>
                    {p.namespaces.map((ns) => (
                      <Label
                        key={ns}
                        color="blue"
                        closeBtnAriaLabel={`Revoke ${ns}`}
                        onClose={
                          onRevoke
                            ? () => void run(`Revoked ${ns}`, () => onRevoke(p, ns))
                            : undefined
                        }
                      >
                        {ns}
                      </Label>
                    ))}
                    {p.namespaceSelector && (
                      <Label color="purple">namespaces with {p.namespaceSelector}</Label>
                    )}
                  </LabelGroup>
                  {!p.namespaces.length && !p.namespaceSelector && 'no namespace'}
                </Td>
                <Td dataLabel="Devices">{p.devices}</Td>
                <Td dataLabel="Age">{p.age}</Td>
              </Tr>
            ))}
          </Tbody>
        </Table>
      )}
      {onGrant && (
        <Form
          isHorizontal
          onSubmit={(e) => {
            e.preventDefault();
            grant();
          }}
        >
          <Title headingLevel="h3">Grant a namespace the use of a device</Title>
          <FormGroup label="Device" fieldId="usb-grant-device">
            <FormSelect
              id="usb-grant-device"
              value={device}
              onChange={(_e, value) => {
                setDevice(value);
              }}
            >
              <FormSelectOption value="" label="Pick a device" />
              {devices.map((d) => (
                <FormSelectOption
                  key={d.name}
                  value={d.name}
                  label={`${d.name}: ${d.product}${d.serial ? ` (${d.serial})` : ''} on ${d.node}`}
                />
              ))}
            </FormSelect>
          </FormGroup>
          <FormGroup label="Namespace" fieldId="usb-grant-namespace">
            <TextInput
              id="usb-grant-namespace"
              value={namespace}
              onChange={(_e, value) => {
                setNamespace(value);
              }}
            />
          </FormGroup>
          <ActionGroup>
            <Button type="submit" variant="primary">
              Grant
            </Button>
          </ActionGroup>
        </Form>
      )}
    </section>
  );
};
