import {
  FormSelect,
  FormSelectOption,
  SearchInput,
  Toolbar,
  ToolbarContent,
  ToolbarItem,
} from '@patternfly/react-core';
import type { FC } from 'react';
import { DEVICE_STATES, type DeviceFilter } from '../../k8s/devices';

interface Props {
  filter: DeviceFilter;
  nodes: string[];
  onChange: (filter: DeviceFilter) => void;
}

/** The devices page's filters: node, state, and free text. */
export const DeviceFilters: FC<Props> = ({ filter, nodes, onChange }) => (
  <Toolbar>
    <ToolbarContent>
      <ToolbarItem>
        <FormSelect
          aria-label="Node"
          value={filter.node}
          onChange={(_e, node) => {
            onChange({ ...filter, node });
          }}
        >
          <FormSelectOption value="" label="All nodes" />
          {nodes.map((node) => (
            <FormSelectOption key={node} value={node} label={node} />
          ))}
        </FormSelect>
      </ToolbarItem>
      <ToolbarItem>
        <FormSelect
          aria-label="State"
          value={filter.state}
          onChange={(_e, state) => {
            onChange({ ...filter, state });
          }}
        >
          <FormSelectOption value="" label="Any state" />
          {DEVICE_STATES.map((state) => (
            <FormSelectOption key={state} value={state} label={state} />
          ))}
        </FormSelect>
      </ToolbarItem>
      <ToolbarItem>
        <SearchInput
          aria-label="Search devices"
          placeholder="ids, name, serial, port, VM…"
          value={filter.text}
          onChange={(_e, text) => {
            onChange({ ...filter, text });
          }}
          onClear={() => {
            onChange({ ...filter, text: '' });
          }}
        />
      </ToolbarItem>
    </ToolbarContent>
  </Toolbar>
);
