"""FreeSWITCH actions over the event socket (inbound ESL): live calls, hang up, gateways."""
