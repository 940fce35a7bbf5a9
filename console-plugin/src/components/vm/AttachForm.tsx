import {
  ActionGroup,
  Button,
  Form,
  FormGroup,
  FormHelperText,
  FormSelect,
  FormSelectOption,
  HelperText,
  HelperTextItem,
  TextInput,
  Title,
} from '@patternfly/react-core';
import { useState, type FC } from 'react';
import { deviceLabel, type DeviceRow } from '../../k8s/devices';
import type { DeviceSelector } from '../../k8s/models';
import { parseSelector } from '../../k8s/selectors';

interface Props {
  /** Free devices to pick from; undefined: the user may not list devices. */
  free?: DeviceRow[];
  devicesError?: string;
  onAttach: (selector: DeviceSelector) => Promise<void>;
}

/** Attach a free device picked from the list, or a typed selector that waits for a device. */
export const AttachForm: FC<Props> = ({ free, devicesError, onAttach }) => {
  const [device, setDevice] = useState('');
  const [typed, setTyped] = useState('');
  const [problem, setProblem] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async () => {
    setProblem('');
    let selector: DeviceSelector;
    if (device && typed.trim()) {
      setProblem('pick a device or type a selector, not both');
      return;
    }
    if (device) {
      selector = { name: device };
    } else if (typed.trim()) {
      const parsed = parseSelector(typed);
      if ('error' in parsed) {
        setProblem(parsed.error);
        return;
      }
      selector = parsed.selector;
    } else {
      setProblem('pick a device or type a selector');
      return;
    }
    setBusy(true);
    try {
      await onAttach(selector);
      setDevice('');
      setTyped('');
    } finally {
      setBusy(false);
    }
  };

  return (
    <section data-test="attach-form">
      <Title headingLevel="h3">Attach a device</Title>
      <Form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <FormGroup label="Device" fieldId="usb-attach-device">
          {free ? (
            <FormSelect
              id="usb-attach-device"
              value={device}
              onChange={(_e, value) => {
                setDevice(value);
              }}
              aria-label="Device"
            >
              <FormSelectOption
                value=""
                label={free.length ? 'Pick a free device' : 'No device is free'}
              />
              {free.map((row) => (
                <FormSelectOption key={row.name} value={row.name} label={deviceLabel(row)} />
              ))}
            </FormSelect>
          ) : (
            <p>You cannot list devices ({devicesError}); type a selector instead.</p>
          )}
        </FormGroup>
        <FormGroup label="or a selector" fieldId="usb-attach-selector">
          <TextInput
            id="usb-attach-selector"
            value={typed}
            placeholder="serial=AAA1, node=node1  or  0781:5567"
            onChange={(_e, value) => {
              setTyped(value);
            }}
            validated={problem ? 'error' : 'default'}
          />
          <FormHelperText>
            <HelperText>
              <HelperTextItem variant={problem ? 'error' : 'default'} data-test="attach-help">
                {problem || 'A selector also waits for a device that is not plugged in yet.'}
              </HelperTextItem>
            </HelperText>
          </FormHelperText>
        </FormGroup>
        <ActionGroup>
          <Button type="submit" variant="primary" isDisabled={busy} isLoading={busy}>
            Attach
          </Button>
        </ActionGroup>
      </Form>
    </section>
  );
};
