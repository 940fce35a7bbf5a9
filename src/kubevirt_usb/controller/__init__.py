"""The controller: binds USBAttachments to USBDevices under the admins' USBPolicies.

Pure decisions (`model`, `matching`, `policy`, `vmcheck`, `slots`, `status`, `decide`,
`leaderlease`) take plain data and return plain data; the I/O layer (`cache`, `workqueue`,
`reconciler`, `leader`, `manager`, `cli`) watches the API, runs the decisions and writes their
results.
"""
